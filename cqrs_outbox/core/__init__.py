"""The Django-free core that the master, the relay and the replica share.

It owns what must mean the same on every side: the outbox table contract (`contract`),
the message body and everything about it (`wire`), the errors in their three kinds
(`errors`), broker URLs and password masking (`urls`), one-line log text (`escape`),
the translation of pika's errors (`pika_errors`), back-off (`backoff`) and the event
signatures (`signing`).

It may import the standard library, pika and, lazily, `cryptography`; nothing from
Django, from the rest of `cqrs_outbox`, or from `relay`. The relay imports only this
package from `cqrs_outbox`; tests/unit/relay/test_no_django.py holds both to that.
"""
