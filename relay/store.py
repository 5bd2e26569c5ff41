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
from relay.db import POSTGRESQL, Database, placeholders

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
        f"SELECT partition, owner, expires_at FROM {L} "
        "WHERE owner <> '' AND partition >= 0 ORDER BY partition"
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
    "correlation_id, signature"
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


# The master write path: one INSERT per transaction, on the caller's connection and
# inside the caller's transaction.

_EVENT_COLUMNS = (
    "cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload, "
    "correlation_id, signature"
)
_EVENT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
# PostgreSQL fills the rest from column defaults (migration 0006); elsewhere we send them.
_INSERT_COLUMNS = f"{_EVENT_COLUMNS}, status, attempts, available_at, last_error, created_at"
_INSERT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, '', %s)"


def _event_params(event: contract.NewEvent) -> tuple:
    return (
        event.cqrs_id, event.instance_pk, event.signal_type, event.revision, event.partition,
        event.routing_key, event.payload, event.correlation_id, event.signature,
    )


def _insert_sql(db: Database, events: Sequence[contract.NewEvent]) -> tuple[str, list]:
    params: list = []
    if db.vendor == POSTGRESQL:
        for event in events:
            params.extend(_event_params(event))
        rows = ", ".join([_EVENT_ROW] * len(events))
        return f"INSERT INTO {T} ({_EVENT_COLUMNS}) VALUES {rows}", params
    now = utcnow()
    for event in events:
        params.extend(_event_params(event))
        params.extend((contract.STATUS_PENDING, now, now))
    rows = ", ".join([_INSERT_ROW] * len(events))
    return f"INSERT INTO {T} ({_INSERT_COLUMNS}) VALUES {rows}", params


def insert_events(db: Database, events: Sequence[contract.NewEvent]) -> list[int]:
    """Insert pending events in one statement and return their ids, in order."""
    if not events:
        return []
    sql, params = _insert_sql(db, events)
    rows = db.fetchall(sql + " RETURNING id", params)
    return [int(row[0]) for row in rows]


def insert_events_and_commit(db: Database, events: Sequence[contract.NewEvent]) -> None:
    """Insert pending events and COMMIT the transaction, in one round trip (PostgreSQL).

    For drivers that send a query string as it is (client-side binding) and then see the
    server idle, so they send no COMMIT of their own: psycopg 3 as Django sets it up.
    If the INSERT fails, PostgreSQL skips the COMMIT and the transaction is aborted; if
    the COMMIT fails (a deferred constraint), the driver raises its error.
    """
    sql, params = _insert_sql(db, events)
    db.execute(sql + "; COMMIT", params).close()


def rewrite_event(db: Database, event_id: int, event: contract.NewEvent) -> bool:
    """Give a still-pending event the state of a later save in the same transaction."""
    return bool(
        db.rowcount(
            f"UPDATE {T} SET payload = %s, revision = %s, correlation_id = %s, "
            "signature = %s, created_at = %s WHERE id = %s AND status = %s",
            (event.payload, event.revision, event.correlation_id, event.signature, utcnow(),
             event_id, contract.STATUS_PENDING),
        )
    )


# The relay's drain path: claim pending rows of held partitions, settle them after the
# broker answered, purge old published rows.


@dataclass(frozen=True)
class Pending:
    """A pending event as the relay publishes it."""

    id: int
    partition: int
    routing_key: str
    payload: str
    attempts: int
    available_at: datetime.datetime
    signature: str | None = None


_PENDING_COLUMNS = "id, partition, routing_key, payload, attempts, available_at, signature"

# One index range scan of the partial pending index per partition, in the order given,
# stopping as soon as `limit` rows are found: each partition yields a prefix of its
# pending rows in id order, which is all the per-row order needs.
_CLAIM_POSTGRESQL = (
    f"SELECT e.{_PENDING_COLUMNS.replace(', ', ', e.')} "
    "FROM unnest(%s::int[], %s::bigint[]) AS p(part, after) "
    f"CROSS JOIN LATERAL (SELECT {_PENDING_COLUMNS} FROM {T} "
    "WHERE status = %s AND partition = p.part AND id > p.after "
    "ORDER BY id LIMIT %s) AS e LIMIT %s"
)
_CLAIM_ONE = (
    f"SELECT {_PENDING_COLUMNS} FROM {T} "
    "WHERE status = %s AND partition = %s AND id > %s ORDER BY id LIMIT %s"
)


def claim(db: Database, cursors: Sequence[tuple[int, int]], limit: int) -> list[Pending]:
    """Return up to `limit` pending rows: for each (partition, after_id), in the order
    given, the partition's pending rows with an id above after_id, in id order.

    Reads only; the leases make the rows this relay's to publish.
    """
    if not cursors or limit < 1:
        return []
    if db.vendor == "postgresql":
        parts, afters = [p for p, _ in cursors], [a for _, a in cursors]
        rows = db.fetchall(
            _CLAIM_POSTGRESQL, (parts, afters, contract.STATUS_PENDING, limit, limit)
        )
    else:
        rows = []
        for partition, after in cursors:
            wanted = limit - len(rows)
            if wanted <= 0:
                break
            rows.extend(
                db.fetchall(_CLAIM_ONE, (contract.STATUS_PENDING, partition, after, wanted))
            )
    return [Pending(int(i), int(p), k, b, int(a), _aware(t), s) for i, p, k, b, a, t, s in rows]


def _id_filter(db: Database, ids: Sequence[int]) -> tuple[str, list]:
    if db.vendor == "postgresql":
        return "id = ANY(%s)", [list(ids)]
    return f"id IN ({placeholders(ids)})", list(ids)


def mark_published(db: Database, ids: Sequence[int], now: datetime.datetime) -> int:
    """Mark events the broker confirmed as published."""
    if not ids:
        return 0
    where, params = _id_filter(db, ids)
    return db.rowcount(
        f"UPDATE {T} SET status = %s, published_at = %s WHERE {where} AND status = %s",
        (contract.STATUS_PUBLISHED, db.timestamp(now), *params, contract.STATUS_PENDING),
    )


def mark_returned(db: Database, event_id: int, reason: str, now: datetime.datetime) -> int:
    """Mark an event the broker accepted but could not route: published, with the reason.

    No queue was bound for its routing key, so publishing it again would meet the same
    fate; the reason stays on the row for the admin and the status output.
    """
    return db.rowcount(
        f"UPDATE {T} SET status = %s, published_at = %s, last_error = %s "
        "WHERE id = %s AND status = %s",
        (contract.STATUS_PUBLISHED, db.timestamp(now), reason, event_id, contract.STATUS_PENDING),
    )


def mark_refused(
    db: Database, event_id: int, reason: str, retry_at: datetime.datetime, max_attempts: int
) -> bool:
    """Count one broker refusal of an event; fail it at `max_attempts`. Return if it failed."""
    row = db.fetchone(
        f"UPDATE {T} SET attempts = attempts + 1, last_error = %s, available_at = %s, "
        "status = CASE WHEN attempts + 1 >= %s THEN %s ELSE status END "
        "WHERE id = %s AND status = %s RETURNING status",
        (reason, db.timestamp(retry_at), max_attempts, contract.STATUS_FAILED, event_id,
         contract.STATUS_PENDING),
    )
    return bool(row and row[0] == contract.STATUS_FAILED)


def purge_published(db: Database, before: datetime.datetime, limit: int) -> int:
    """Delete up to `limit` events published before `before`, oldest first."""
    return db.rowcount(
        f"DELETE FROM {T} WHERE id IN (SELECT id FROM {T} WHERE status = %s "
        "AND published_at < %s ORDER BY published_at LIMIT %s)",
        (contract.STATUS_PUBLISHED, db.timestamp(before), limit),
    )


def clock(db: Database) -> datetime.datetime:
    """Return the database's current time (PostgreSQL), or this host's (SQLite)."""
    if db.vendor != "postgresql":
        return utcnow()
    row = db.fetchone("SELECT statement_timestamp()")
    return _aware(row[0]) if row else utcnow()


# Leases. Rows 0..PARTITIONS-1 are the partitions. Rows with a negative partition
# number are the relays' membership: each live relay keeps one, so every relay can
# count the others and take a fair share, including relays holding no partition yet.


@dataclass(frozen=True)
class LeaseRow:
    partition: int
    owner: str
    token: str
    expires_at: datetime.datetime | None

    def free(self, now: datetime.datetime) -> bool:
        """Return whether nobody holds this lease at `now`."""
        return not self.owner or self.expires_at is None or self.expires_at <= now


def ensure_partitions(db: Database) -> None:
    """Create the lease rows of every partition that lacks one."""
    values = ", ".join("(%s, '', '', NULL)" for _ in range(contract.PARTITIONS))
    db.rowcount(
        f"INSERT INTO {L} (partition, owner, token, expires_at) VALUES {values} "
        "ON CONFLICT (partition) DO NOTHING",
        tuple(range(contract.PARTITIONS)),
    )


def leases(db: Database) -> list[LeaseRow]:
    """Return every lease row, membership rows included."""
    rows = db.fetchall(f"SELECT partition, owner, token, expires_at FROM {L} ORDER BY partition")
    return [LeaseRow(int(p), o, t, _aware(e) if e else None) for p, o, t, e in rows]


def take_lease(
    db: Database, partition: int, owner: str, token: str, now: datetime.datetime,
    expires: datetime.datetime,
) -> bool:
    """Take a lease if it is free or expired (or already ours); return whether we got it."""
    if partition < 0:
        db.rowcount(
            f"INSERT INTO {L} (partition, owner, token, expires_at) VALUES (%s, '', '', NULL) "
            "ON CONFLICT (partition) DO NOTHING",
            (partition,),
        )
    return 1 == db.rowcount(
        f"UPDATE {L} SET owner = %s, token = %s, expires_at = %s WHERE partition = %s "
        "AND (owner = '' OR owner = %s OR expires_at IS NULL OR expires_at <= %s)",
        (owner, token, db.timestamp(expires), partition, owner, db.timestamp(now)),
    )


def renew_leases(
    db: Database, owner: str, partitions: Sequence[int], expires: datetime.datetime
) -> set[int]:
    """Extend the leases `owner` still holds; return the partitions it still holds."""
    if not partitions:
        return set()
    rows = db.fetchall(
        f"UPDATE {L} SET expires_at = %s WHERE owner = %s "
        f"AND partition IN ({placeholders(partitions)}) RETURNING partition",
        (db.timestamp(expires), owner, *partitions),
    )
    return {int(row[0]) for row in rows}


def release_leases(db: Database, owner: str, partitions: Sequence[int]) -> int:
    """Give up leases `owner` holds, so another relay can take them at once."""
    if not partitions:
        return 0
    return db.rowcount(
        f"UPDATE {L} SET owner = '', token = '', expires_at = NULL WHERE owner = %s "
        f"AND partition IN ({placeholders(partitions)})",
        (owner, *partitions),
    )
