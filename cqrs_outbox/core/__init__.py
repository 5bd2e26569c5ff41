"""The Django-free core that the master, the relay and the replica share.

It owns what must mean the same on every side: the outbox table contract (`contract`),
the message body and everything about it (`wire`), the errors in their three kinds
(`errors`), broker and database URLs and password masking (`urls`), one-line log text
(`escape`), the pika connection parameters both processes use (`amqp`) and the
translation of pika's errors (`pika_errors`), back-off (`backoff`), the event signatures
(`signing`), and the metrics and health probes the relay and the replica both serve
(`probes`, over `httpd`).

It may import the standard library, pika and, lazily, `cryptography` and
`prometheus_client`; nothing from Django, from the rest of `cqrs_outbox`, or from
`relay`. tests/unit/relay/test_no_django.py and tests/unit/test_layout.py hold it to that.
"""
