"""A thin database handle the store runs its SQL through: DB-API, any of our dialects.

`Database` wraps a connection (psycopg 3, psycopg2, sqlite3, mysqlclient, or Django's
wrapper of one) with the dialect module that speaks to it, chosen once from the vendor:
`postgresql`, `mysql` or `sqlite`. `connect()` opens a URL; `wrap()` takes a Django
connection, without importing Django.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable
from cqrs_outbox.core.urls import describe, redact
from cqrs_outbox.store import mysql, postgresql, sqlite

DIALECTS = {dialect.NAME: dialect for dialect in (postgresql, mysql, sqlite)}

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
    vendor: str
    paramstyle: str = "format"
    driver: str = ""
    dialect: ModuleType = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vendor not in DIALECTS:
            raise ConfigurationError(
                f"the outbox store speaks {', '.join(DIALECTS)}, not {self.vendor!r}")
        self.dialect = DIALECTS[self.vendor]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor (the caller reads or closes it)."""
        cursor = self.connection.cursor()
        parameter = self.dialect.parameter
        cursor.execute(self.dialect.prepare(sql, self.paramstyle),
                       tuple(parameter(p) for p in params))
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


def driver_version(module: str) -> str:
    """Return `module` and its installed version, e.g. `psycopg 3.2.3`, for start-up lines."""
    if module in (sqlite.NAME, sqlite.MODULE):
        return f"sqlite3 {sqlite3.sqlite_version}"
    if module == mysql.MODULE:
        module = mysql.DISTRIBUTION
    for distribution in (postgresql.DRIVERS.get(module, module), module, f"{module}-binary"):
        try:
            return f"{module} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return module


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
            return Database(connection=connection, vendor=dialect.NAME,
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
    driver = connection.Database.__name__.split(".")[0]
    return Database(connection=connection, vendor=connection.vendor, driver=driver)


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
