"""Every query on the outbox and lease tables.

The drain loop, the Django admin, the management commands and the Celery tasks call
these functions; none of them writes SQL of its own. Each function takes a
`relay.db.Database` and leaves transaction control to the caller.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from relay import contract
from relay.db import Database, placeholders

T = contract.OUTBOX_TABLE
L = contract.LEASE_TABLE


def utcnow() -> datetime.datetime:
    """Return the current time, timezone-aware (the tables store UTC)."""
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class PartitionOwner:
    partition: int
    owner: str
    expires_at: datetime.datetime | None


@dataclass(frozen=True)
class Summary:
    """The outbox at a glance: what is waiting, what failed, who drains what."""

    pending: int
    failed: int
    oldest_pending_at: datetime.datetime | None
    owners: tuple[PartitionOwner, ...]

    def oldest_pending_age(self, now: datetime.datetime | None = None) -> float | None:
        """Return the age of the oldest pending event in seconds, or None if none wait."""
        if self.oldest_pending_at is None:
            return None
        return ((now or utcnow()) - _aware(self.oldest_pending_at)).total_seconds()


def _aware(value: datetime.datetime) -> datetime.datetime:
    if isinstance(value, str):  # sqlite3 without converters returns text
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def summary(db: Database) -> Summary:
    """Count pending and failed events and list partition owners.

    Counts come from the partial pending index and the failed rows only, never a
    scan of published history.
    """
    pending, oldest = db.fetchone(
        f"SELECT COUNT(*), MIN(created_at) FROM {T} WHERE status = %s",
        (contract.STATUS_PENDING,),
    ) or (0, None)
    (failed,) = db.fetchone(
        f"SELECT COUNT(*) FROM {T} WHERE status = %s", (contract.STATUS_FAILED,)
    ) or (0,)
    rows = db.fetchall(
        f"SELECT partition, owner, expires_at FROM {L} WHERE owner <> '' ORDER BY partition"
    )
    owners = tuple(
        PartitionOwner(p, o, _aware(e) if e is not None else None) for p, o, e in rows
    )
    return Summary(int(pending), int(failed), _aware(oldest) if oldest else None, owners)


def retry_failed(db: Database, ids: Sequence[int]) -> int:
    """Make the given failed events pending again, with their attempts reset."""
    if not ids:
        return 0
    return db.rowcount(
        f"UPDATE {T} SET status = %s, attempts = 0, last_error = '', available_at = %s "
        f"WHERE status = %s AND id IN ({placeholders(ids)})",
        (contract.STATUS_PENDING, utcnow(), contract.STATUS_FAILED, *ids),
    )


_COPY_COLUMNS = (
    "cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload, "
    "correlation_id"
)


def replay(db: Database, ids: Sequence[int]) -> int:
    """Append copies of the given events as new pending rows, in their original order.

    The copies go through the relay like any new event; replicas ignore the ones whose
    revision they already hold, and take the rest.
    """
    if not ids:
        return 0
    now = utcnow()
    return db.rowcount(
        f"INSERT INTO {T} ({_COPY_COLUMNS}, status, attempts, available_at, last_error, "
        f"created_at) SELECT {_COPY_COLUMNS}, %s, 0, %s, '', %s FROM {T} "
        f"WHERE id IN ({placeholders(ids)}) ORDER BY id",
        (contract.STATUS_PENDING, now, now, *ids),
    )


# The master write path: one INSERT per event (or one per bulk), on the caller's
# connection and inside the caller's transaction.

_INSERT_COLUMNS = (
    "cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload, "
    "correlation_id, status, attempts, available_at, last_error, created_at"
)
_INSERT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, '', %s)"


def _insert_params(event: contract.NewEvent, now: datetime.datetime) -> tuple:
    return (
        event.cqrs_id, event.instance_pk, event.signal_type, event.revision, event.partition,
        event.routing_key, event.payload, event.correlation_id, contract.STATUS_PENDING,
        now, now,
    )


def insert_events(db: Database, events: Sequence[contract.NewEvent]) -> list[int]:
    """Insert pending events in one statement and return their ids, in order."""
    if not events:
        return []
    now = utcnow()
    params: list = []
    for event in events:
        params.extend(_insert_params(event, now))
    rows = db.fetchall(
        f"INSERT INTO {T} ({_INSERT_COLUMNS}) VALUES "
        + ", ".join([_INSERT_ROW] * len(events))
        + " RETURNING id",
        params,
    )
    return [int(row[0]) for row in rows]


def rewrite_event(db: Database, event_id: int, event: contract.NewEvent) -> bool:
    """Give a still-pending event the state of a later save in the same transaction."""
    return bool(
        db.rowcount(
            f"UPDATE {T} SET payload = %s, revision = %s, correlation_id = %s, "
            "created_at = %s WHERE id = %s AND status = %s",
            (event.payload, event.revision, event.correlation_id, utcnow(), event_id,
             contract.STATUS_PENDING),
        )
    )
