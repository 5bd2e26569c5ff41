"""The outbox relay: drains committed CQRS events from the outbox table to RabbitMQ.

It owns the drain loop (`engine`), publishing (`publisher`, `pika_publisher`), nack
bookkeeping (`nacks`), partition `leases`, wake-ups (`wake`), the relay's `metrics`, the
status output (`status`) and `python -m relay` (`cli`). Every statement it runs is the
store's (`cqrs_outbox.store`).

It may import the standard library, pika, the database drivers, `cqrs_outbox.core` and
`cqrs_outbox.store`; nothing from Django or from the rest of `cqrs_outbox`
(tests/unit/relay/test_no_django.py), so it runs without Django, its settings or the
master's models.
"""
