"""The outbox store: every statement on the outbox and lease tables, free of Django.

The master's commit-time flush, the drain loop, the Django admin, the management
commands and the Celery tasks call these functions; none of them writes SQL of its own.
Each function takes a `dbapi.Database` and leaves transaction control to the caller.
What a database writes its own way is asked of its dialect module (`postgresql`,
`mysql`, `sqlite`: the same names in each), which the handle carries as `db.dialect`.
Adding a database is adding a dialect module and naming it in `DIALECTS`.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cqrs_outbox.core import contract, signing
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import redact
from cqrs_outbox.store import mysql, postgresql, sqlite
from cqrs_outbox.store.dbapi import Database, placeholders

OUTBOX_TABLE = contract.OUTBOX_TABLE
LEASE_TABLE = contract.LEASE_TABLE


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
    # Events the broker returned as unroutable and nobody replayed yet, per routing key.
    returned_by_key: tuple[tuple[str, int], ...] = ()

    @property
    def returned(self) -> int:
        """Return how many events wait, returned unroutable, for a queue and a replay."""
        return sum(count for _, count in self.returned_by_key)

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
    """Count pending, failed and returned events and list partition owners.

    Counts come from the partial pending and returned indexes and the failed rows only,
    never a scan of published history.
    """
    pending, oldest = db.fetchone(
        f"SELECT COUNT(*), MIN(created_at) FROM {OUTBOX_TABLE} WHERE status = %s",
        (contract.STATUS_PENDING,),
    ) or (0, None)
    (failed,) = db.fetchone(
        f"SELECT COUNT(*) FROM {OUTBOX_TABLE} WHERE status = %s", (contract.STATUS_FAILED,)
    ) or (0,)
    rows = db.fetchall(
        f"SELECT partition, owner, expires_at FROM {LEASE_TABLE} "
        "WHERE owner <> '' AND partition >= 0 ORDER BY partition"
    )
    owners = tuple(
        PartitionOwner(p, o, _aware(e) if e is not None else None) for p, o, e in rows
    )
    return Summary(
        int(pending), int(failed), _aware(oldest) if oldest else None, owners,
        returned_by_key(db),
    )


def returned_by_key(db: Database) -> tuple[tuple[str, int], ...]:
    """Count the events returned unroutable and not replayed, per routing key.

    Plan: the returned index only (partial on PostgreSQL and SQLite, a range of
    `returned_at` on MySQL), whatever the size of the table.
    """
    rows = db.fetchall(
        f"SELECT routing_key, COUNT(*) FROM {OUTBOX_TABLE} WHERE returned_at IS NOT NULL "
        "GROUP BY routing_key ORDER BY routing_key"
    )
    return tuple((str(key), int(count)) for key, count in rows)


def retry_failed(db: Database, ids: Sequence[int]) -> int:
    """Make the given failed events pending again, with their attempts reset."""
    if not ids:
        return 0
    return db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET status = %s, attempts = 0, last_error = '', available_at = %s "
        f"WHERE status = %s AND id IN ({placeholders(ids)})",
        (contract.STATUS_PENDING, db.timestamp(utcnow()), contract.STATUS_FAILED, *ids),
    )


_COPY_COLUMNS = (
    "cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload, "
    "correlation_id, traceparent, tracestate, signature"
)


def replay(db: Database, ids: Sequence[int]) -> int:
    """Append copies of the given events as new pending rows, in their original order.

    The copies go through the relay like any new event; replicas ignore the ones whose
    revision they already hold, and take the rest. Originals the broker had returned
    as unroutable lose that mark: their copies carry them now.
    """
    if not ids:
        return 0
    now = utcnow()
    db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET returned_at = NULL "
        f"WHERE returned_at IS NOT NULL AND id IN ({placeholders(ids)})",
        tuple(ids),
    )
    return db.rowcount(
        f"INSERT INTO {OUTBOX_TABLE} ({_COPY_COLUMNS}, status, attempts, available_at, last_error, "
        f"created_at) SELECT {_COPY_COLUMNS}, %s, 0, %s, '', %s FROM {OUTBOX_TABLE} "
        f"WHERE id IN ({placeholders(ids)}) ORDER BY id",
        (contract.STATUS_PENDING, db.timestamp(now), db.timestamp(now), *ids),
    )


# The master write path: one INSERT per transaction, on the caller's connection and
# inside the caller's transaction.

_EVENT_COLUMNS = (
    "cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload, "
    "correlation_id"
)
# Sent only when an event of the batch has them, so a service without tracing or signing
# binds no more values than it needs.
_TRACE_COLUMNS = ", traceparent, tracestate"
_SIGNATURE_COLUMNS = ", signature"
# PostgreSQL fills the rest from column defaults (migration 0006); elsewhere we send them.
_DEFAULTED_COLUMNS = ", status, attempts, available_at, last_error, created_at"
_DEFAULTED_VALUES = ", %s, 0, %s, '', %s"


# Above this many parameters, psycopg 3 gets the INSERT with its values written in. Its
# client-side binding parses a statement for placeholders in Python and keeps the parse
# only for statements of at most 50 parameters (and 4 kB); past that it parses every
# INSERT anew, which costs twice what quoting the values ourselves does (measured: 38
# against 19 microseconds of CPU per event at ten events, 31 against 10 at 64).
LITERAL_PAST = 50


def _insert_sql(db: Database, events: Sequence[contract.NewEvent]) -> tuple[str, list]:
    traced = any(event.traceparent for event in events)
    signed = any(event.signature for event in events)
    columns = _EVENT_COLUMNS + (_TRACE_COLUMNS if traced else "")
    columns += _SIGNATURE_COLUMNS if signed else ""
    values = "%s, %s, %s, %s, %s, %s, %s, %s" + (", %s, %s" if traced else "")
    values += ", %s" if signed else ""
    defaults = db.dialect.DEFAULTS_IN_INSERT
    if defaults:
        columns += _DEFAULTED_COLUMNS
        values += _DEFAULTED_VALUES
        now = db.timestamp(utcnow())  # the form this database stores
    params: list = []
    for event in events:
        params.extend((
            event.cqrs_id, event.instance_pk, event.signal_type, event.revision,
            event.partition, event.routing_key, event.payload, event.correlation_id,
        ))
        if traced:
            params.extend((event.traceparent, event.tracestate))
        if signed:
            params.append(event.signature)
        if defaults:
            params.extend((contract.STATUS_PENDING, now, now))
    rows = ", ".join([f"({values})"] * len(events))
    return f"INSERT INTO {OUTBOX_TABLE} ({columns}) VALUES {rows}", params


def insert_events(db: Database, events: Sequence[contract.NewEvent]) -> list[int]:
    """Insert pending events in one statement and return their ids, in order."""
    if not events:
        return []
    sql, params = _insert_sql(db, events)
    if not db.dialect.RETURNING:
        return db.dialect.insert_returning_ids(db, sql, params, len(events))
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
    quote = db.literal_quoter() if len(params) > LITERAL_PAST else None
    if quote is not None:
        db.execute_literal(with_literals(sql, params, quote) + "; COMMIT")
        return
    db.execute(sql + "; COMMIT", params).close()


def with_literals(sql: str, params: Sequence[Any], quote: Callable[[Any], bytes]) -> str:
    """Return `sql` with each %s replaced by its value, quoted by the driver's own
    quoting (`Database.literal_quoter`), as its client-side binding would. `sql` must
    hold no other % (no %% either): run the result with no parameters."""
    parts = sql.encode().split(b"%s")
    out = [parts[0]]
    for value, part in zip(params, parts[1:], strict=True):
        out.append(quote(value))
        out.append(part)
    return b"".join(out).decode()


def rewrite_event(db: Database, event_id: int, event: contract.NewEvent) -> bool:
    """Give a still-pending event the state of a later save in the same transaction.

    Plan: one primary key probe (see `_UNSETTLED`).
    """
    return bool(
        db.rowcount(
            f"UPDATE {OUTBOX_TABLE} SET payload = %s, revision = %s, correlation_id = %s, "
            f"signature = %s, created_at = %s WHERE id = %s AND {_UNSETTLED}",
            (event.payload, event.revision, event.correlation_id, event.signature,
             db.timestamp(utcnow()), event_id),
        )
    )


# The relay's drain path: read pending rows of held partitions, settle them after the
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
    cqrs_id: str = ""
    created_at: datetime.datetime | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    signature: str | None = None

    def headers(self) -> dict[str, str] | None:
        """Return the AMQP headers the event carries: its trace context and signature."""
        found = {}
        if self.traceparent:
            found["traceparent"] = self.traceparent
            if self.tracestate:
                found["tracestate"] = self.tracestate
        if self.signature:
            found[signing.HEADER] = self.signature
        return found or None


_PENDING_COLUMNS = (
    "id, partition, routing_key, payload, attempts, available_at, cqrs_id, created_at, "
    "traceparent, tracestate, signature"
)

# One index range scan of the partial pending index per partition, in the order given,
# stopping as soon as `limit` rows are found: each partition yields a prefix of its
# pending rows in id order, which is all the per-row order needs.
# Plan: Nested Loop over the cursors, inner Limit over an Index Scan of
# cqrs_outbox_pending_idx with both columns bound (partition = p.part AND id > p.after),
# in index order, so no sort. Why nothing else wins: the primary key in id order would
# have to filter the partition and the status out of published history, and a
# sequential scan with a sort reads the whole table; both are costed on the table's
# real size. A bitmap scan of the pending index followed by a sort must read every
# pending row of the partition before the first comes out, while the ordered scan stops
# at `limit`; where the statistics say the index is empty, both look nearly free and the
# ordered scan, needing no sort, is the cheaper. tests/integration/relay/test_plans.py
# checks this plan on tables whose statistics say empty, drained, or all pending.
def read_pending(db: Database, cursors: Sequence[tuple[int, int]], limit: int) -> list[Pending]:
    """Return up to `limit` pending rows: for each (partition, after_id), in the order
    given, the partition's pending rows with an id above after_id, in id order.

    Reads only; the leases make the rows this relay's to publish.
    """
    if not cursors or limit < 1:
        return []
    rows = db.dialect.read_pending(db, _PENDING_COLUMNS, cursors, limit)
    return [
        Pending(int(i), int(p), k, b, int(a), _aware(t), c, _aware(m), tp, ts, s)
        for i, p, k, b, a, t, c, m, tp, ts, s in rows
    ]


# Every statement that settles events names them by id and must find them through the
# primary key: one probe per id, whatever the statistics say. The danger is the partial
# pending index (partition, id): a query whose WHERE clause implies its predicate
# `status = 'pending'` may use it, with the id as a filter on its second column, which
# reads the whole backlog for every statement. The planner picks it exactly when the
# backlog is fresh: the index was sized when it was empty (CREATE INDEX, TRUNCATE, or
# the last VACUUM before the burst), so scanning it "costs nothing". PostgreSQL uses a
# partial index only when it can prove the query implies the index's predicate, and no
# `<>` test ever proves an `=`; so the guard against settling an event twice is written
# as "not yet settled", which is the same set of rows (the three statuses are all
# there are) but cannot reach the pending index, nor the published or failed ones.
# That leaves the primary key, or a sequential scan, which is costed on the table's
# real size in pages and therefore loses to a few hundred probes on any table larger
# than a few batches.
_UNSETTLED = (
    f"status NOT IN ('{contract.STATUS_PUBLISHED}', '{contract.STATUS_FAILED}')"
)


def _id_filter(db: Database, ids: Sequence[int]) -> tuple[str, list]:
    return db.dialect.id_filter(ids)


def mark_published(db: Database, ids: Sequence[int], now: datetime.datetime) -> int:
    """Mark events the broker confirmed as published.

    Plan: a (bitmap) index scan of the primary key with `id = ANY(ids)`, one probe per
    id, touching only these rows (see `_UNSETTLED` for why nothing else can serve it).
    """
    if not ids:
        return 0
    where, params = _id_filter(db, ids)
    # An error recorded by an earlier try (a nack, say) is over once the broker confirmed.
    return db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET status = %s, published_at = %s, last_error = '' "
        f"WHERE {where} AND {_UNSETTLED}",
        (contract.STATUS_PUBLISHED, db.timestamp(now), *params),
    )


def mark_nacked(db: Database, ids: Sequence[int], reason: str, retry_at: datetime.datetime) -> int:
    """Record that the broker nacked events: they stay pending, due again at `retry_at`,
    with the reason and no attempt counted.

    Plan: as `mark_published`, one primary key probe per id.
    """
    if not ids:
        return 0
    where, params = _id_filter(db, ids)
    return db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET last_error = %s, available_at = %s WHERE {where} "
        f"AND {_UNSETTLED}",
        (reason, db.timestamp(retry_at), *params),
    )


def mark_returned(db: Database, event_id: int, reason: str, now: datetime.datetime) -> int:
    """Mark an event the broker accepted but could not route: published and returned,
    with the reason.

    No queue was bound for its routing key, so publishing it again at once would meet
    the same fate. `returned_at` keeps it visible (status output, admin filter, metrics)
    until someone replays it once a queue is bound.
    Plan: one primary key probe (see `_UNSETTLED`).
    """
    stamp = db.timestamp(now)
    return db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET status = %s, published_at = %s, returned_at = %s, "
        f"last_error = %s WHERE id = %s AND {_UNSETTLED}",
        (contract.STATUS_PUBLISHED, stamp, stamp, reason, event_id),
    )


def mark_refused(
    db: Database, event_id: int, reason: str, retry_at: datetime.datetime, max_attempts: int
) -> bool:
    """Count one broker refusal of an event; fail it at `max_attempts`. Return if it failed.

    Plan: one primary key probe (see `_UNSETTLED`).
    """
    if not db.dialect.RETURNING:
        return db.dialect.mark_refused(db, event_id, reason, retry_at, max_attempts, _UNSETTLED)
    row = db.fetchone(
        f"UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, last_error = %s, available_at = %s, "
        "status = CASE WHEN attempts + 1 >= %s THEN %s ELSE status END "
        f"WHERE id = %s AND {_UNSETTLED} RETURNING status",
        (reason, db.timestamp(retry_at), max_attempts, contract.STATUS_FAILED, event_id),
    )
    return bool(row and row[0] == contract.STATUS_FAILED)


# Purge walks the table in id order through the primary key, one window of `limit` rows
# per statement, and deletes by id what is published and past retention. It never asks
# the partial published index for "the oldest published rows": a table whose statistics
# say that index is empty makes a bitmap scan of all of it plus a sort look as cheap as
# reading its first entries, and that reads every purgeable row for each statement.
# Window plan: an index scan of the primary key from `id > after`, stopped by the LIMIT
# (the only status test is a `<>`, so no partial index qualifies; a sequential scan and
# sort is costed on the table's real size and loses to `limit` rows of an index). Failed
# events are filtered out on the way, so any number of them at the head of the table
# never holds the purge back; they are rare, so the rows filtered stay few.
_PURGE_WINDOW = (
    f"SELECT id, status, published_at FROM {OUTBOX_TABLE} WHERE id > %s "
    f"AND status <> '{contract.STATUS_FAILED}' ORDER BY id LIMIT %s"
)
# Delete plan: one primary key probe per id; "not pending, not failed" rather than
# "published" keeps the partial indexes out (see `_UNSETTLED`).
_PURGE_DELETE = (
    f"DELETE FROM {OUTBOX_TABLE} WHERE {{ids}} AND status NOT IN "
    f"('{contract.STATUS_PENDING}', '{contract.STATUS_FAILED}') AND published_at < %s"
)


def purge_published(
    db: Database, before: datetime.datetime, limit: int, after: int = 0
) -> tuple[int, int | None]:
    """Delete the events published before `before` among the `limit` oldest with an id
    above `after`; return how many went and the id to go on after, or None when done.

    The walk ends at the first event still pending or published since `before`: later
    ids are newer still. Failed events are left out of the walk, so they never end it.
    """
    rows = db.fetchall(_PURGE_WINDOW, (after, limit))
    purgeable, last = [], None
    for event_id, status, published_at in rows:
        if status != contract.STATUS_PUBLISHED or _aware(published_at) >= before:
            last = None
            break
        purgeable.append(int(event_id))
        last = int(event_id)
    if len(rows) < limit:
        last = None
    return _delete_published(db, purgeable, before), last


def _delete_published(db: Database, ids: Sequence[int], before: datetime.datetime) -> int:
    if not ids:
        return 0
    where, params = _id_filter(db, ids)
    return db.rowcount(_PURGE_DELETE.format(ids=where), (*params, db.timestamp(before)))


def clock(db: Database) -> datetime.datetime:
    """Return the database's current time (PostgreSQL, MySQL), or this host's (SQLite)."""
    return db.dialect.clock(db)


# Leases. Rows 0..PARTITIONS-1 are the partitions. Rows with a negative partition
# number are the relays' membership: each live relay keeps one, so every relay can
# count the others and take a fair share, including relays holding no partition yet.
# The lease table holds PARTITIONS rows plus one per relay, so any plan of these
# statements, a sequential scan included, reads a few dozen rows at most.


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
        f"INSERT INTO {LEASE_TABLE} (partition, owner, token, expires_at) VALUES {values} "
        + _lease_row_exists(db),
        tuple(range(contract.PARTITIONS)),
    )


def _lease_row_exists(db: Database) -> str:
    return db.dialect.LEASE_ROW_EXISTS


def leases(db: Database) -> list[LeaseRow]:
    """Return every lease row, membership rows included."""
    rows = db.fetchall(
        f"SELECT partition, owner, token, expires_at FROM {LEASE_TABLE} ORDER BY partition"
    )
    return [LeaseRow(int(p), o, t, _aware(e) if e else None) for p, o, t, e in rows]


def take_lease(
    db: Database, partition: int, owner: str, token: str, now: datetime.datetime,
    expires: datetime.datetime,
) -> bool:
    """Take a lease if it is free or expired (or already ours); return whether we got it."""
    if partition < 0:
        db.rowcount(
            f"INSERT INTO {LEASE_TABLE} (partition, owner, token, expires_at) "
            "VALUES (%s, '', '', NULL) " + _lease_row_exists(db),
            (partition,),
        )
    return 1 == db.rowcount(
        f"UPDATE {LEASE_TABLE} SET owner = %s, token = %s, expires_at = %s WHERE partition = %s "
        "AND (owner = '' OR owner = %s OR expires_at IS NULL OR expires_at <= %s)",
        (owner, token, db.timestamp(expires), partition, owner, db.timestamp(now)),
    )


def renew_leases(
    db: Database, owner: str, partitions: Sequence[int], expires: datetime.datetime
) -> set[int]:
    """Extend the leases `owner` still holds; return the partitions it still holds."""
    if not partitions:
        return set()
    if not db.dialect.RETURNING:
        return db.dialect.renew_leases(db, owner, partitions, expires)
    rows = db.fetchall(
        f"UPDATE {LEASE_TABLE} SET expires_at = %s WHERE owner = %s "
        f"AND partition IN ({placeholders(partitions)}) RETURNING partition",
        (db.timestamp(expires), owner, *partitions),
    )
    return {int(row[0]) for row in rows}


def release_leases(db: Database, owner: str, partitions: Sequence[int]) -> int:
    """Give up leases `owner` holds, so another relay can take them at once."""
    if not partitions:
        return 0
    return db.rowcount(
        f"UPDATE {LEASE_TABLE} SET owner = '', token = '', expires_at = NULL WHERE owner = %s "
        f"AND partition IN ({placeholders(partitions)})",
        (owner, *partitions),
    )


def notifies(db: Database) -> bool:
    """Return whether the database can wake the relay with notifications (LISTEN/NOTIFY)."""
    return db.dialect.NOTIFIES


def row_estimate(db: Database, table: str, filtered: bool,
                 explain: Callable[[], str]) -> int | None:
    """Return the database's estimate of the rows a query on `table` yields, without
    running it, or None where it has none. `explain()` returns the query's JSON plan."""
    return db.dialect.row_estimate(db, table, filtered, explain)

# -- the handle: which database, how to reach it -------------------------------------------

DIALECTS = {dialect.NAME: dialect for dialect in (postgresql, mysql, sqlite)}


def connect(url: str, driver: str | None = None) -> Database:
    """Open a `postgresql://`, `mysql://` or `sqlite:///path` URL in autocommit mode.

    The scheme picks the database and its driver. `driver` picks the PostgreSQL module
    (`psycopg` or `psycopg2`); None takes the first one installed, psycopg 3 first.
    MySQL and MariaDB go through mysqlclient. Raises ConfigurationError for a URL or
    driver it cannot use and DatabaseUnavailable when the database cannot be reached;
    neither message carries the password.
    """
    scheme = urlsplit(url).scheme
    for dialect in DIALECTS.values():
        if scheme in dialect.SCHEMES:
            connection, module = dialect.open_url(url, driver)
            return Database(connection=connection, dialect=dialect,
                            paramstyle="qmark" if dialect is sqlite else "format",
                            driver=module)
    raise ConfigurationError(
        "database URL must start with postgresql://, mysql:// or sqlite:///, "
        f"got {redact(url)!r}"
    )


def wrap(connection: Any) -> Database:
    """Return a `Database` over a Django database connection (its cursors take `%s`),
    connecting it first."""
    connection.ensure_connection()
    dialect = dialect_of(connection)
    if dialect is None:
        raise ConfigurationError(
            f"the outbox store speaks {', '.join(DIALECTS)}, not {connection.vendor!r}")
    driver = connection.Database.__name__.split(".")[0]
    return Database(connection=connection, dialect=dialect, driver=driver)


def dialect_of(connection: Any) -> ModuleType | None:
    """Return the dialect module of a Django connection, or None for another database."""
    return DIALECTS.get(connection.vendor)


def url_of(connection: Any) -> str:
    """Return a Django connection's database as a URL, password included: redact it
    before showing it."""
    vendor, settings = connection.vendor, connection.settings_dict
    if vendor == sqlite.NAME:
        return f"sqlite:///{settings['NAME']}"
    auth = quote(str(settings.get("USER") or ""), safe="")
    if settings.get("PASSWORD"):
        auth += ":" + quote(str(settings["PASSWORD"]), safe="")
    host = settings.get("HOST") or "localhost"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"{vendor}://{auth}{'@' if auth else ''}{host}{port}/{settings['NAME']}"


def database_name(url: str) -> str:
    """Return the database a URL (or libpq keyword string) names, for a metric label.

    Only the name: never the host, user or any password the URL carries.
    """
    if "://" in url:
        # Before any query, after the last `@`: an unencoded password cannot end up here.
        place = url.partition("?")[0].partition("://")[2].rpartition("@")[2]
        path = place.partition("/")[2]
        name = unquote(path.rsplit("/", 1)[-1]) if path else ""
    else:
        found = re.search(r"\bdbname\s*=\s*'?([^'\s]*)", url)
        name = found.group(1) if found else ""
    return redact(name) or "default"


def driver_version(module: str) -> str:
    """Return `module` and its installed version, e.g. `psycopg 3.2.3`, for start-up lines."""
    if module in (sqlite.NAME, sqlite.MODULE):
        return f"sqlite3 {sqlite.VERSION}"
    if module == mysql.MODULE:
        module = mysql.DISTRIBUTION
    for distribution in (postgresql.DRIVERS.get(module, module), module, f"{module}-binary"):
        try:
            return f"{module} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return module
