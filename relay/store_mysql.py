"""The statements of `relay.store` that MySQL 8 and MariaDB 10.6+ write differently.

The store calls these for a `mysql` database; everything else it runs as written (the
column name `partition`, a reserved word there, is quoted by `relay.db`). What differs:
MySQL has no `UPDATE ... RETURNING` (MariaDB has it for INSERT and DELETE only), no
`ON CONFLICT`, no `unnest`, and evaluates the assignments of an UPDATE left to right,
each seeing the ones before it.

Every statement runs in autocommit mode, so under MySQL's REPEATABLE READ each one still
sees what other relays committed before it started; the compare-and-set UPDATEs of the
leases read the latest committed row whatever the isolation level.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from cqrs_outbox.core import contract
from relay import db_mysql
from relay.db import Database, placeholders

OUTBOX_TABLE = contract.OUTBOX_TABLE
LEASE_TABLE = contract.LEASE_TABLE

# `INSERT ... ON CONFLICT (partition) DO NOTHING`: a no-op update on the duplicate key,
# which skips the existing row and nothing else (INSERT IGNORE would also hide errors).
LEASE_ROW_EXISTS = "ON DUPLICATE KEY UPDATE partition = partition"


def insert_returning_ids(db: Database, sql: str, params: Sequence[Any], count: int) -> list[int]:
    """Run a multi-row INSERT into the outbox and return the ids of its rows, in order.

    MariaDB returns them (INSERT ... RETURNING). MySQL gives the first id: one INSERT
    with its rows listed takes consecutive auto-increment values in every lock mode
    (`innodb_autoinc_lock_mode` leaves gaps only in INSERT ... SELECT and the like),
    spaced by `auto_increment_increment`.
    """
    if db_mysql.is_mariadb(db.raw):
        return [int(row[0]) for row in db.fetchall(sql + " RETURNING id", params)]
    cursor = db.execute(sql, params)
    try:
        first = int(cursor.lastrowid)
    finally:
        cursor.close()
    (step,) = db.fetchone("SELECT @@auto_increment_increment") or (1,)
    return [first + i * int(step) for i in range(count)]


def read_pending_sql(columns: str, partitions: int) -> str:
    """Return the read of pending rows over `partitions` cursors: one bounded range per partition.

    Each branch reads the partition's pending rows above its cursor in id order from
    the (status, partition, id) index and stops at the limit; the ids are ranked by the
    order the cursors were given, cut to the limit, and only then joined to their rows,
    so no more payloads are read than are returned.
    Parameters: (rank, status, partition, after, limit) per cursor, then the limit.
    """
    branch = (
        f"(SELECT %s AS k, id FROM {OUTBOX_TABLE} WHERE status = %s AND partition = %s AND id > %s "
        "ORDER BY id LIMIT %s)"
    )
    ranked = " UNION ALL ".join([branch] * partitions)
    picked = f"SELECT k, id FROM ({ranked}) AS r ORDER BY k, id LIMIT %s"
    selected = ", ".join(f"e.{name.strip()}" for name in columns.split(","))
    return (
        f"SELECT {selected} FROM ({picked}) AS c JOIN {OUTBOX_TABLE} AS e ON e.id = c.id "
        "ORDER BY c.k, c.id"
    )


def read_pending(
    db: Database, columns: str, cursors: Sequence[tuple[int, int]], limit: int
) -> list:
    """Return the rows of `relay.store.read_pending` (raw tuples of `columns`)."""
    params: list[Any] = []
    for rank, (partition, after) in enumerate(cursors):
        params += [rank, contract.STATUS_PENDING, partition, after, limit]
    return db.fetchall(read_pending_sql(columns, len(cursors)), [*params, limit])


def mark_refused(db: Database, event_id: int, reason: str, retry_at: datetime.datetime,
                 max_attempts: int, unsettled: str) -> bool:
    """Count one refusal of an event as `relay.store.mark_refused` does; return if it failed.

    The status is assigned first: MySQL would otherwise compare the attempts already
    incremented by the same statement.
    """
    changed = db.rowcount(
        f"UPDATE {OUTBOX_TABLE} SET status = CASE WHEN attempts + 1 >= %s THEN %s ELSE status END, "
        "attempts = attempts + 1, last_error = %s, available_at = %s "
        f"WHERE id = %s AND {unsettled}",
        (max_attempts, contract.STATUS_FAILED, reason, retry_at, event_id),
    )
    if not changed:
        return False
    row = db.fetchone(f"SELECT status FROM {OUTBOX_TABLE} WHERE id = %s", (event_id,))
    return bool(row and row[0] == contract.STATUS_FAILED)


def renew_leases(db: Database, owner: str, partitions: Sequence[int],
                 expires: datetime.datetime) -> set[int]:
    """Extend the leases `owner` still holds; return the partitions it still holds."""
    where = f"owner = %s AND partition IN ({placeholders(partitions)})"
    db.rowcount(f"UPDATE {LEASE_TABLE} SET expires_at = %s WHERE {where}",
                (expires, owner, *partitions))
    rows = db.fetchall(f"SELECT partition FROM {LEASE_TABLE} WHERE {where}", (owner, *partitions))
    return {int(row[0]) for row in rows}


def clock(db: Database) -> datetime.datetime:
    """Return the database's current time in UTC, whatever the session's time zone."""
    row = db.fetchone("SELECT UTC_TIMESTAMP(6)")
    value = row[0] if row else datetime.datetime.now(datetime.timezone.utc)
    return value.replace(tzinfo=datetime.timezone.utc)
