"""The one line the worker commands print when they start: where to, how, with what.

It goes to stdout, not to a logger, so it shows whatever LOGGING a project has
(`startproject`'s default shows no INFO lines). Passwords are masked.
"""

from __future__ import annotations

from django.db import connections

from cqrs_outbox import conf, store
from cqrs_outbox.core import contract
from cqrs_outbox.core.urls import redact, safe_urls
from cqrs_outbox.registry import MasterRegistry
from relay import engine


def database(alias: str = "default") -> str:
    """Return Django's database `alias` as a URL with the password masked, and its driver."""
    connection = connections[alias]
    driver = store.driver_version(connection.Database.__name__.split(".")[0])
    url = store.url_of(connection)
    return f"{alias} {redact(url)} ({driver})"


def relay_line(relay: engine.Relay, alias: str) -> str:
    """Return the start-up line of `cqrs_relay`."""
    settings = conf.get()
    listen = "LISTEN/NOTIFY" if relay.config.listen else "polling only"
    return (
        f"relay {relay.owner}: database {database(alias)}, broker {safe_urls(settings.addresses)}, "
        f"exchange {settings.exchange}, batch {relay.config.batch_size}, "
        f"poll {relay.config.poll_interval:g}s, {listen}"
    ) + unroutable_note(relay.returned_at_start)


def unroutable_note(returned: tuple[tuple[str, int], ...]) -> str:
    """Return the start-up line's warning about routing keys with returned events,
    naming the registered master models among them, or nothing when there are none."""
    if not returned:
        return ""
    keys = {key for key, _ in returned}
    models = sorted(
        cqrs_id for cqrs_id in MasterRegistry.models if contract.routing_key(cqrs_id) in keys
    )
    counted = ", ".join(f"{key} ({count})" for key, count in returned)
    note = f"\nWARNING: events returned unroutable, no queue bound to their routing key: {counted}"
    if models:
        note += f"; registered master models without a bound queue: {', '.join(models)}"
    return note + ". Bind the queues (start the consumers), then replay them in the admin."


def consumer_line(workers: int, batch_size: int | None, prefetch: int | None) -> str:
    """Return the start-up line of `cqrs_consume`."""
    settings = conf.get()
    return (
        f"consuming queue {settings.queue} from exchange {settings.exchange} at "
        f"{safe_urls(settings.addresses)}: {workers} worker(s), "
        f"batch {batch_size or settings.replica.batch_size}, "
        f"prefetch {prefetch or settings.replica.prefetch_count}, "
        f"signatures {settings.replica.signatures}, database {database()}"
    )
