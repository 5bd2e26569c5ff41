"""A thin database handle the store runs its SQL through: DB-API, any of our dialects.

`Database` wraps a connection (psycopg 3, psycopg2, sqlite3, mysqlclient, or Django's
wrapper of one) with the dialect module that speaks to it (`postgresql`, `mysql` or
`sqlite`), chosen once when the handle is made: `cqrs_outbox.store.connect()` opens a
URL, `cqrs_outbox.store.wrap()` takes a Django connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable
from cqrs_outbox.core.urls import describe

# DB-API error classes by name, so any driver and Django's wrappers are recognised
# without importing them. A schema error means the tables are missing: retrying cannot
# help. Every other driver error is treated as the database being away for now.
DRIVER_ERRORS = {"DatabaseError", "InterfaceError"}
SCHEMA_ERRORS = {"ProgrammingError"}
SCHEMA_MESSAGES = ("no such table", "does not exist")


@dataclass
class Database:
    """A DB-API connection (psycopg 3, psycopg2, sqlite3, or Django's) and how to speak to it.

    The store writes SQL with `%s` placeholders; `paramstyle` says whether the driver
    wants them as they are ('format': psycopg, psycopg2 and Django cursors) or as `?`
    ('qmark': the sqlite3 module). `driver` names the module underneath, for start-up lines.
    """

    connection: Any
    dialect: ModuleType
    paramstyle: str = "format"
    driver: str = ""

    @property
    def vendor(self) -> str:
        """Return Django's name of the database: 'postgresql', 'mysql' or 'sqlite'."""
        return str(self.dialect.NAME)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor (the caller reads or closes it)."""
        cursor = self.connection.cursor()
        cursor.execute(self.dialect.prepare(sql, self.paramstyle),
                       self.dialect.parameters(params))
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

    def literal_quoter(self) -> Callable[[Any], bytes] | None:
        """Return the driver's quoting of one value as an SQL literal, where it has a fast
        one (psycopg 3), or None."""
        return self.dialect.literal_quoter(self)

    def execute_literal(self, sql: str) -> None:
        """Run SQL that carries its values as literals: no parameters, so the driver does
        not parse it for placeholders."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return how many rows it touched."""
        cursor = self.execute(sql, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def timestamp(self, value: Any) -> Any:
        """Return an aware datetime as a parameter in the form this database stores."""
        return self.dialect.timestamp(value)

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
