"""MySQL 8 and MariaDB 10.6+: mysqlclient, and what the store writes its own way.

The same names as `postgresql` and `sqlite`. `mysql://user:password@host:port/name` (also
`mariadb://`); a `?charset=` or other query is not read: the connection is always
utf8mb4, in autocommit mode, with UTC sessions.

What differs: MySQL has no `UPDATE ... RETURNING` (MariaDB has it for INSERT and DELETE
only), no `ON CONFLICT`, no `unnest`, evaluates the assignments of an UPDATE left to
right, each seeing the ones before it, and takes `partition` for a reserved word. Every
statement runs in autocommit mode, so under REPEATABLE READ each one still sees what
other relays committed before it started; the compare-and-set UPDATEs of the leases read
the latest committed row whatever the isolation level. It has no deferred triggers: the
capture records every change and a trigger on the outbox clears it.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import unreachable
from cqrs_outbox.store import ddl

if TYPE_CHECKING:
    from cqrs_outbox.store.dbapi import Database

NAME = "mysql"  # MySQL and MariaDB, as Django names both
RETURNING = False  # the store asks this module for the rows a statement changed
DEFAULTS_IN_INSERT = True  # the outbox's defaulted columns are given in the INSERT
UPDATE_RETURNING = False
COMMIT_WITH_INSERT = False
BEGIN_WITH_STATEMENT = False
NOTIFIES = False
OUTBOX_TABLE = contract.OUTBOX_TABLE
LEASE_TABLE = contract.LEASE_TABLE
# `INSERT ... ON CONFLICT (partition) DO NOTHING`: a no-op update on the duplicate key,
# which skips the existing row and nothing else (INSERT IGNORE would also hide errors).
LEASE_ROW_EXISTS = "ON DUPLICATE KEY UPDATE partition = partition"
SCHEMES = ("mysql", "mariadb")
MODULE = "MySQLdb"  # what mysqlclient installs
DISTRIBUTION = "mysqlclient"
INSTALL_HINT = "pip install 'cqrs-outbox[mysql]'"
DEFAULT_PORT = 3306
CONNECT_TIMEOUT = 10  # seconds to wait for a MySQL connection
READ_TIMEOUT = 60  # seconds a statement may wait for the server's answer
FOUND_ROWS = 2  # client flag: UPDATE counts the rows it matched, as PostgreSQL does

# `partition` is a reserved word in MySQL: the store's SQL names the column bare, and
# statements sent to MySQL get it quoted here, in one place.
_PARTITION = re.compile(r"(?<![`\w])partition(?![`\w])")


@functools.lru_cache(maxsize=256)
def quote_identifiers(sql: str) -> str:
    """Return `sql` with the column name `partition` quoted for MySQL."""
    return _PARTITION.sub("`partition`", sql)


def connect_options(url: str) -> dict[str, Any]:
    """Return mysqlclient's `connect()` arguments for a `mysql://` URL."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ConfigurationError(
            f"database URL {parts.scheme}://{parts.hostname or ''}/ names no database; "
            "write mysql://user:password@host:port/name"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigurationError(f"database URL: bad port in {parts.netloc!r}") from exc
    return dict(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=name,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        client_flag=FOUND_ROWS,
        # Lease times and every timestamp the relay writes are UTC, as Django writes them.
        init_command="SET time_zone = '+00:00'",
    )


def module() -> Any:
    """Return the mysqlclient module; raise ConfigurationError saying how to install it."""
    try:
        return importlib.import_module(MODULE)
    except ImportError as exc:
        raise ConfigurationError(
            f"a mysql:// database URL needs mysqlclient, which is not installed: {INSTALL_HINT}"
        ) from exc


def open_url(url: str, driver: str | None = None) -> tuple[Any, str]:
    """Open a `mysql://` URL; return the connection and the driver module's name."""
    mysqldb = module()
    options = connect_options(url)
    try:
        return mysqldb.connect(**options), MODULE
    except mysqldb.Error as exc:
        raise unreachable(url, exc) from exc


def is_mariadb(raw: Any) -> bool:
    """Return whether a mysqlclient connection talks to MariaDB (rather than MySQL)."""
    info = getattr(raw, "get_server_info", None)
    return info is not None and "mariadb" in str(info()).lower()


# -- statements --------------------------------------------------------------------------

def prepare(sql: str, paramstyle: str) -> str:
    """Return the store's SQL as MySQL takes it: the column `partition` quoted."""
    return quote_identifiers(sql)


def parameters(params: Sequence[Any]) -> tuple:
    """Return a statement's parameters as MySQL takes them: datetimes as naive UTC."""
    return tuple(timestamp(p) if isinstance(p, datetime.datetime) else p for p in params)


def timestamp(value: datetime.datetime) -> Any:
    """Return a datetime as the naive UTC a DATETIME column holds."""
    if value.tzinfo is None:
        return value
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def literal_quoter(db: Database) -> Callable[[Any], bytes] | None:
    """Return None: values go as parameters."""
    return None


def id_filter(ids: Sequence[int]) -> tuple[str, list]:
    """Return the WHERE test naming `ids`, and its parameters: an IN list."""
    return f"id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def insert_returning_ids(db: Database, sql: str, params: Sequence[Any], count: int) -> list[int]:
    """Run a multi-row INSERT into the outbox and return the ids of its rows, in order.

    MariaDB returns them (INSERT ... RETURNING). MySQL gives the first id: one INSERT
    with its rows listed takes consecutive auto-increment values in every lock mode
    (`innodb_autoinc_lock_mode` leaves gaps only in INSERT ... SELECT and the like),
    spaced by `auto_increment_increment`.
    """
    if is_mariadb(db.raw):
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
    """Return the rows of `cqrs_outbox.store.read_pending` (raw tuples of `columns`)."""
    params: list[Any] = []
    for rank, (partition, after) in enumerate(cursors):
        params += [rank, contract.STATUS_PENDING, partition, after, limit]
    return db.fetchall(read_pending_sql(columns, len(cursors)), [*params, limit])


def mark_refused(db: Database, event_id: int, reason: str, retry_at: datetime.datetime,
                 max_attempts: int, unsettled: str) -> bool:
    """Count one refusal of an event as `cqrs_outbox.store.mark_refused` does; return if it failed.

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
    where = f"owner = %s AND partition IN ({', '.join(['%s'] * len(partitions))})"
    db.rowcount(f"UPDATE {LEASE_TABLE} SET expires_at = %s WHERE {where}",
                (expires, owner, *partitions))
    rows = db.fetchall(f"SELECT partition FROM {LEASE_TABLE} WHERE {where}", (owner, *partitions))
    return {int(row[0]) for row in rows}


def clock(db: Database) -> datetime.datetime:
    """Return the database's current time in UTC, whatever the session's time zone."""
    row = db.fetchone("SELECT UTC_TIMESTAMP(6)")
    value = row[0] if row else datetime.datetime.now(datetime.timezone.utc)
    return value.replace(tzinfo=datetime.timezone.utc)


def row_estimate(db: Database, table: str, filtered: bool, explain: Callable[[], str]) -> int:
    """Return the server's estimate of the rows a query yields, without running it: for
    the whole table InnoDB's own (information_schema's TABLE_ROWS, kept by its
    statistics), for a filtered one the rows EXPLAIN expects its plan's first table to
    yield."""
    if not filtered:
        row = db.fetchone(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
        return int(row[0] or 0) if row else 0
    plan = json.loads(explain())
    if isinstance(plan, str):  # Django hands MariaDB's JSON back quoted as a string
        plan = json.loads(plan)
    first = _first_table(plan) or {}
    rows = first.get("rows", first.get("rows_produced_per_join", 0))  # MariaDB, MySQL
    return int(float(rows) * float(first.get("filtered", 100)) / 100)


def _first_table(node: Any) -> dict | None:
    if isinstance(node, dict):
        if isinstance(node.get("table"), dict):
            return node["table"]
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _first_table(child)
        if found is not None:
            return found
    return None


# -- the capture triggers ----------------------------------------------------------------

# When the change was made, in UTC, read when the trigger runs: after the writer got the
# row's lock, so a delete is stamped after the save it waited for (the time is sent as a
# DELETE's cqrs_updated, which replicas compare with the row's). The statement's start
# (NOW(), UTC_TIMESTAMP()) can come before that save. MySQL has no UTC form of SYSDATE(),
# so the statement's UTC start is moved on by the time since.
NOW = ("UTC_TIMESTAMP(6) + INTERVAL TIMESTAMPDIFF(MICROSECOND, NOW(6), SYSDATE(6)) "
       "MICROSECOND")
TRIGGERS_SQL = ("SELECT trigger_name FROM information_schema.triggers WHERE "
                "trigger_schema = DATABASE() AND trigger_name LIKE 'cqrs_outbox_capture%%'")
CLEAR_TRIGGER = ddl.CLEAR_TRIGGER


def trigger_names(table: str) -> list[str]:
    """Return the names of the capture triggers of `table`."""
    return ddl.row_trigger_names(table)


def capture_triggers(table: str, pk: str, cqrs_id: str,
                     quote: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """Return the DDL that installs, and the DDL that drops, the capture of `table`."""
    return ddl.row_triggers(
        table, pk, cqrs_id, quote, now=NOW, text="CHAR",
        create=lambda trigger, op, insert: (
            f"CREATE TRIGGER {trigger} AFTER {op} ON {quote(table)} FOR EACH ROW {insert}"),
        drop=lambda trigger: f"DROP TRIGGER IF EXISTS {trigger}",
    )


def shared_triggers(remove: bool) -> list[str]:
    """Return the DDL of the outbox's clearing trigger (to drop, with `remove`)."""
    clear = ddl.clear_trigger(lambda statement: statement)
    return clear[:1] if remove else clear
