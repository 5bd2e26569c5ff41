"""SQLite: the embedded default (the demo, tests, small services), with the sqlite3 module.

The same names as `postgresql` and `mysql`. What differs: `?` placeholders, datetimes
stored as naive UTC text (as Django writes them, and text compares correctly only in that
exact form), no arrays (an id list is an IN list), no LISTEN/NOTIFY (the relay polls),
the host's clock, and no deferred triggers (the capture records and clears).
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import redact, unreachable
from cqrs_outbox.store import ddl

if TYPE_CHECKING:
    from cqrs_outbox.store.dbapi import Database

NAME = "sqlite"
SCHEMES = ("sqlite",)
MODULE = "sqlite3"
VERSION = sqlite3.sqlite_version  # of the SQLite library the module runs
RETURNING = True  # SQLite 3.35+
DEFAULTS_IN_INSERT = True  # the outbox's defaulted columns are given in the INSERT
UPDATE_RETURNING = True
COMMIT_WITH_INSERT = False
BEGIN_WITH_STATEMENT = False
NOTIFIES = False
LEASE_ROW_EXISTS = "ON CONFLICT (partition) DO NOTHING"
BUSY_TIMEOUT = 5.0  # seconds SQLite waits for another writer's lock


def open_url(url: str, driver: str | None = None) -> tuple[Any, str]:
    """Open `sqlite:///relative/path` or `sqlite:////absolute/path` (as SQLAlchemy spells
    them) in autocommit mode; return the connection and the module's name."""
    path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
    if not path:
        raise ConfigurationError(f"database URL {redact(url)!r} names no file")
    try:
        with open(path, "rb"):
            pass
        # One thread uses a connection at a time, but its owner may close it from another
        # (a relay run in a thread); sqlite3 would refuse that and leave it open.
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise unreachable(url, exc) from exc
    return connection, NAME


def prepare(sql: str, paramstyle: str) -> str:
    """Return the store's SQL as this database takes it: `?` for the sqlite3 module."""
    return sql.replace("%s", "?") if paramstyle == "qmark" else sql


def parameters(params: Sequence[Any]) -> tuple:
    """Return a statement's parameters in the form this database takes (as they are)."""
    return tuple(params)


def timestamp(value: datetime.datetime) -> Any:
    """Return an aware datetime as the naive UTC text SQLite keeps."""
    naive = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return naive.isoformat(" ", "microseconds")


def literal_quoter(db: Database) -> Callable[[Any], bytes] | None:
    """Return None: values go as parameters."""
    return None


def id_filter(ids: Sequence[int]) -> tuple[str, list]:
    """Return the WHERE test naming `ids`, and its parameters: an IN list."""
    return f"id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def read_pending(db: Database, columns: str, cursors: Sequence[tuple[int, int]],
                 limit: int) -> list:
    """Return the raw rows of `store.read_pending`, one statement per partition."""
    sql = (f"SELECT {columns} FROM {contract.OUTBOX_TABLE} "
           "WHERE status = %s AND partition = %s AND id > %s ORDER BY id LIMIT %s")
    rows: list = []
    for partition, after in cursors:
        wanted = limit - len(rows)
        if wanted <= 0:
            break
        rows.extend(db.fetchall(sql, (contract.STATUS_PENDING, partition, after, wanted)))
    return rows


def clock(db: Database) -> datetime.datetime:
    """Return this host's time: the database is a file on it."""
    return datetime.datetime.now(datetime.timezone.utc)


def row_estimate(db: Database, table: str, filtered: bool,
                 explain: Callable[[], str]) -> int | None:
    """Return None: SQLite has no estimate, so the admin counts."""
    return None


# -- the capture triggers ----------------------------------------------------------------

TRIGGERS_SQL = ("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'cqrs_outbox_capture%%'")
CLEAR_TRIGGER = ddl.CLEAR_TRIGGER


def trigger_names(table: str) -> list[str]:
    """Return the names of the capture triggers of `table`."""
    return ddl.row_trigger_names(table)


def capture_triggers(table: str, pk: str, cqrs_id: str,
                     quote: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """Return the DDL that installs, and the DDL that drops, the capture of `table`."""
    return ddl.row_triggers(
        table, pk, cqrs_id, quote,
        now="strftime('%Y-%m-%d %H:%M:%f', 'now')", text="TEXT",
        create=lambda trigger, op, insert: (
            f"CREATE TRIGGER {quote(trigger)} AFTER {op} ON {quote(table)} "
            f"FOR EACH ROW BEGIN {insert}; END"),
        drop=lambda trigger: f"DROP TRIGGER IF EXISTS {quote(trigger)}",
    )


def shared_triggers(remove: bool) -> list[str]:
    """Return the DDL of the outbox's clearing trigger (to drop, with `remove`)."""
    clear = ddl.clear_trigger(lambda statement: f"BEGIN {statement}; END")
    return clear[:1] if remove else clear
