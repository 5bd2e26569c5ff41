"""A thin database handle the store runs its SQL through: DB-API, any of our dialects."""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from relay.exceptions import ConfigurationError, DatabaseUnavailable
from relay.urls import redact, scrub

POSTGRESQL = "postgresql"
SQLITE = "sqlite"

CONNECT_TIMEOUT = 10  # seconds to wait for a PostgreSQL connection
SQLITE_BUSY_TIMEOUT = 5.0  # seconds SQLite waits for another writer's lock
# TCP keepalives, so a connection whose peer vanished fails instead of hanging.
KEEPALIVE_IDLE = 10  # seconds
KEEPALIVE_INTERVAL = 5  # seconds
KEEPALIVE_COUNT = 3

# DB-API error classes by name, so any driver and Django's wrappers are recognised
# without importing them. A schema error means the tables are missing: retrying cannot
# help. Every other driver error is treated as the database being away for now.
DRIVER_ERRORS = {"DatabaseError", "InterfaceError"}
SCHEMA_ERRORS = {"ProgrammingError"}
SCHEMA_MESSAGES = ("no such table", "does not exist")


@dataclass
class Database:
    """A DB-API connection (psycopg2, sqlite3, or Django's) and how to speak to it.

    The store writes SQL with `%s` placeholders; `paramstyle` says whether the driver
    wants them as they are ('format': psycopg2 and Django cursors) or as `?` ('qmark':
    the sqlite3 module).
    """

    connection: Any
    vendor: str
    paramstyle: str = "format"

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.paramstyle == "qmark" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor (the caller reads or closes it)."""
        cursor = self.connection.cursor()
        cursor.execute(self._sql(sql), tuple(params))
        return cursor

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list:
        """Run a query and return all rows."""
        cursor = self.execute(sql, params)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """Run a query and return its first row, or None."""
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return how many rows it touched."""
        cursor = self.execute(sql, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def timestamp(self, value: datetime.datetime) -> Any:
        """Return an aware datetime as a parameter in the form this database stores.

        SQLite keeps datetimes as naive UTC text (as Django writes them), and text
        compares correctly only in that exact form.
        """
        if self.vendor != SQLITE:
            return value
        naive = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds")

    @property
    def raw(self) -> Any:
        """Return the driver's own connection, under Django's wrapper if there is one."""
        inner = getattr(self.connection, "connection", None)
        return inner if inner is not None else self.connection

    def close(self) -> None:
        """Close the connection, ignoring errors (it may be broken already)."""
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close
            pass


def placeholders(values: Iterable[Any]) -> str:
    """Return `%s, %s, ...` for an IN list of `values`."""
    return ", ".join("%s" for _ in values)


def connect(url: str) -> Database:
    """Open a `postgresql://` or `sqlite:///path` URL in autocommit mode.

    Raises ConfigurationError for a URL it cannot use and DatabaseUnavailable when the
    database cannot be reached; neither message carries the password.
    """
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return _connect_postgresql(url)
    if scheme == "sqlite":
        return _connect_sqlite(url)
    raise ConfigurationError(
        f"database URL must start with postgresql:// or sqlite:///, got {redact(url)!r}"
    )


def _connect_postgresql(url: str) -> Database:
    import psycopg2  # only the PostgreSQL path needs the driver

    try:
        connection = psycopg2.connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            keepalives=1,
            keepalives_idle=KEEPALIVE_IDLE,
            keepalives_interval=KEEPALIVE_INTERVAL,
            keepalives_count=KEEPALIVE_COUNT,
            application_name="cqrs-outbox-relay",
        )
    except psycopg2.Error as exc:
        raise _unreachable(url, exc) from exc
    connection.autocommit = True
    return Database(connection=connection, vendor=POSTGRESQL, paramstyle="format")


def _connect_sqlite(url: str) -> Database:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
    if not path:
        raise ConfigurationError(f"database URL {redact(url)!r} names no file")
    try:
        with open(path, "rb"):
            pass
        connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise _unreachable(url, exc) from exc
    return Database(connection=connection, vendor=SQLITE, paramstyle="qmark")


def _unreachable(url: str, exc: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"cannot connect to {redact(url)}: {describe(exc, url)}")


def describe(exc: BaseException, *secrets: str) -> str:
    """Return the first line of an error's message, with any URL password masked."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return scrub(text, *secrets)


def is_database_error(exc: BaseException) -> bool:
    """Return whether `exc` comes from a DB-API driver (or Django's wrapper of one)."""
    return bool({cls.__name__ for cls in type(exc).__mro__} & DRIVER_ERRORS)


def translate(exc: BaseException) -> Exception | None:
    """Return the relay error a driver error stands for, or None if it is no driver error."""
    if not is_database_error(exc):
        return None
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = describe(exc)
    if names & SCHEMA_ERRORS or any(m in text for m in SCHEMA_MESSAGES):
        return ConfigurationError(
            f"the outbox tables are missing or differ ({text}); "
            "run `manage.py migrate` on the master's database"
        )
    return DatabaseUnavailable(f"database error: {text}")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn driver errors raised inside the block into the relay's own errors."""
    try:
        yield
    except Exception as error:
        relay_error = translate(error)
        if relay_error is None:
            raise
        raise relay_error from error
