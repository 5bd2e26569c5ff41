"""Write CQRS events into the outbox table, in the caller's transaction and database.

Within one transaction an instance gets one event: a later save rewrites the row the
first save inserted, so the event carries the final state. The bookkeeping of which
row belongs to which instance rides on Django's `on_commit` list, so it follows
savepoint rollbacks exactly as Django's own callbacks do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, transaction

from cqrs_outbox import dbapi, tracing
from relay import contract, store

Key = tuple  # (cqrs_id, instance_pk text, signal_type, queue)

_local = threading.local()


def event_key(cqrs_id: str, pk: Any, signal_type: str, queue: str | None = None) -> Key:
    """Return the key under which one transaction keeps one event."""
    return (cqrs_id, str(pk), signal_type, queue)


def build_row(envelope: contract.Envelope, revision: int, queue: str | None) -> contract.NewEvent:
    """Return the outbox row for `envelope`."""
    pk = str(envelope.instance_pk)
    correlation = envelope.correlation_id
    trace = tracing.headers() or {}
    return contract.NewEvent(
        cqrs_id=envelope.cqrs_id,
        instance_pk=pk,
        signal_type=envelope.signal_type,
        revision=revision,
        partition=contract.partition_for(envelope.cqrs_id, pk),
        routing_key=contract.routing_key(envelope.cqrs_id, queue),
        payload=envelope.to_json(),
        correlation_id=None if correlation is None else str(correlation),
        traceparent=trace.get(tracing.TRACEPARENT),
        tracestate=trace.get(tracing.TRACESTATE),
    )


def _entries(alias: str) -> dict:
    registry = getattr(_local, "entries", None)
    if registry is None:
        registry = _local.entries = {}
    return registry.setdefault(alias, {})


def _alive(alias: str, marker: Callable[[], None]) -> bool:
    conn = connections[alias]
    return conn.in_atomic_block and any(item[1] is marker for item in conn.run_on_commit)


def pending_event(alias: str, key: Key) -> int | None:
    """Return the id of the event this transaction already wrote under `key`, if it stands."""
    entries = _entries(alias)
    entry = entries.get(key)
    if entry is None:
        return None
    if not _alive(alias, entry[1]):
        entries.pop(key, None)
        return None
    return entry[0]


def forget(alias: str, cqrs_id: str, pk: Any) -> None:
    """Drop the bookkeeping of an instance, so its next event gets a row of its own."""
    entries = _entries(alias)
    for key in [k for k in entries if k[0] == cqrs_id and k[1] == str(pk)]:
        del entries[key]


def _remember(alias: str, keys_and_ids: list[tuple[Key, int]]) -> None:
    conn = connections[alias]
    if not conn.in_atomic_block:
        return
    entries = _entries(alias)
    if not conn.run_on_commit:
        entries.clear()  # nothing pending: whatever is left is from rolled-back transactions

    def committed() -> None:
        for key, event_id in keys_and_ids:
            entry = entries.get(key)
            if entry is not None and entry[0] == event_id:
                del entries[key]

    for key, event_id in keys_and_ids:
        entries[key] = (event_id, committed)
    transaction.on_commit(committed, using=alias)


def write(alias: str, key: Key, row: contract.NewEvent) -> int:
    """Insert `row`, or rewrite the row this transaction already has under `key`."""
    db = dbapi.database(alias)
    existing = pending_event(alias, key)
    if existing is not None and store.rewrite_event(db, existing, row):
        return existing
    [event_id] = store.insert_events(db, [row])
    _remember(alias, [(key, event_id)])
    return event_id


def write_many(alias: str, keyed_rows: Iterable[tuple[Key, contract.NewEvent]]) -> list[int]:
    """Write several events; new ones go in one INSERT."""
    fresh, ids = [], []
    for key, row in keyed_rows:
        if pending_event(alias, key) is not None:
            ids.append(write(alias, key, row))
        else:
            fresh.append((key, row))
    if fresh:
        created = store.insert_events(dbapi.database(alias), [row for _, row in fresh])
        keys = [key for key, _ in fresh]
        _remember(alias, list(zip(keys, created, strict=True)))
        ids.extend(created)
    return ids
