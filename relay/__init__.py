"""The outbox relay: drains committed CQRS events from the outbox table to RabbitMQ.

It owns the drain loop (`engine`), every outbox and lease query (`store`), the database
drivers (`db`), publishing (`publisher`, `pika_publisher`), partition leases, wake-ups,
health, metrics, the status output and `python -m relay` (`cli`).

It may import the standard library, pika, the database drivers and `cqrs_outbox.core`;
nothing from Django or from the rest of `cqrs_outbox` (tests/unit/relay/test_no_django.py
holds it to that), so it runs without Django, its settings or the master's models.
"""
