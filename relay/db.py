"""A thin database handle the store runs its SQL through: DB-API, any of our dialects."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import importlib.util
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable
from cqrs_outbox.core.urls import redact, scrub
from relay import db_mysql

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
MYSQL = "mysql"  # MySQL and MariaDB, as Django names both
# PostgreSQL drivers by module name, in the order the relay prefers them when the user
# names none: psycopg 3 first, as Django does. The value is the distribution to report.
DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2-binary"}
INSTALL_HINT = "pip install 'cqrs-outbox[psycopg]' (or '[psycopg2]')"

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
    """A DB-API connection (psycopg 3, psycopg2, sqlite3, or Django's) and how to speak to it.

    The store writes SQL with `%s` placeholders; `paramstyle` says whether the driver
    wants them as they are ('format': psycopg, psycopg2 and Django cursors) or as `?`
    ('qmark': the sqlite3 module). `driver` names the module underneath, for start-up lines.
    """

    connection: Any
    vendor: str
    paramstyle: str = "format"
    driver: str = ""

    def _sql(self, sql: str) -> str:
        if self.vendor == MYSQL:
            return db_mysql.quote_identifiers(sql)
        return sql.replace("%s", "?") if self.paramstyle == "qmark" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor (the caller reads or closes it)."""
        cursor = self.connection.cursor()
        if self.vendor == MYSQL:
            params = [self.timestamp(p) if isinstance(p, datetime.datetime) else p
                      for p in params]
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

    def literal_quoter(self) -> Callable[[Any], bytes] | None:
        """Return psycopg 3's quoting of one value as an SQL literal (its own, in C with
        psycopg-binary), or None for other drivers."""
        if self.driver != "psycopg":
            return None
        raw = getattr(self.connection, "connection", self.connection)  # Django's, or raw
        from psycopg.adapt import Transformer

        return Transformer.from_context(raw).as_literal

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

    def timestamp(self, value: datetime.datetime) -> Any:
        """Return an aware datetime as a parameter in the form this database stores.

        SQLite keeps datetimes as naive UTC text (as Django writes them), and text
        compares correctly only in that exact form. MySQL's DATETIME holds naive UTC.
        """
        if self.vendor == MYSQL:
            if value.tzinfo is None:
                return value
            return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
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


def installed_drivers() -> list[str]:
    """Return the PostgreSQL driver modules that can be imported, preferred first."""
    return [name for name in DRIVERS if _importable(name)]


def _importable(name: str) -> bool:
    if name in sys.modules:  # None there means the import is blocked
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def choose_driver(requested: str | None = None) -> str:
    """Return the PostgreSQL driver to use: `requested`, else the first one installed.

    Raises ConfigurationError naming `--driver` or what to install.
    """
    if requested is not None and requested not in DRIVERS:
        raise ConfigurationError(
            f"--driver must be one of {', '.join(DRIVERS)}, got {requested!r}"
        )
    installed = installed_drivers()
    if requested is not None and requested not in installed:
        package = "psycopg[binary]" if requested == "psycopg" else DRIVERS[requested]
        raise ConfigurationError(
            f"--driver {requested}: the {requested} module is not installed; "
            f"pip install '{package}'"
        )
    if not installed:
        raise ConfigurationError(f"no PostgreSQL driver is installed: {INSTALL_HINT}")
    return requested or installed[0]


def driver_version(module: str) -> str:
    """Return `module` and its installed version, e.g. `psycopg 3.2.3`, for start-up lines."""
    if module == SQLITE:
        return f"sqlite3 {sqlite3.sqlite_version}"
    if module == db_mysql.MODULE:
        module = db_mysql.DISTRIBUTION
    for distribution in (DRIVERS.get(module, module), module, f"{module}-binary"):
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
    if scheme in ("postgresql", "postgres"):
        module = choose_driver(driver)
        if module == "psycopg":
            return _connect_psycopg(url)
        return _connect_postgresql(url)
    if scheme in db_mysql.SCHEMES:
        return _connect_mysql(url)
    if scheme == "sqlite":
        return _connect_sqlite(url)
    raise ConfigurationError(
        "database URL must start with postgresql://, mysql:// or sqlite:///, "
        f"got {redact(url)!r}"
    )


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


def _connect_mysql(url: str) -> Database:
    mysqldb = db_mysql.module()
    options = db_mysql.connect_options(url)
    try:
        connection = mysqldb.connect(**options)
    except mysqldb.Error as exc:
        raise _unreachable(url, exc) from exc
    return Database(connection=connection, vendor=MYSQL, driver=db_mysql.MODULE)


def _libpq_options() -> dict[str, Any]:
    """Return the libpq parameters both drivers pass on: timeouts, keepalives, a name."""
    return dict(
        connect_timeout=CONNECT_TIMEOUT,
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE,
        keepalives_interval=KEEPALIVE_INTERVAL,
        keepalives_count=KEEPALIVE_COUNT,
        application_name="cqrs-outbox-relay",
    )


def _connect_postgresql(url: str) -> Database:
    psycopg2 = importlib.import_module("psycopg2")  # only this path needs the driver
    try:
        connection = psycopg2.connect(url, **_libpq_options())
    except psycopg2.Error as exc:
        raise _unreachable(url, exc) from exc
    connection.autocommit = True
    return Database(connection=connection, vendor=POSTGRESQL, driver="psycopg2")


def _connect_psycopg(url: str) -> Database:
    psycopg = importlib.import_module("psycopg")
    try:
        # Client-side binding, as Django uses it: the store's SQL is written for
        # placeholders that the driver fills in, not for server-side parameters.
        connection = psycopg.connect(
            url, autocommit=True, cursor_factory=psycopg.ClientCursor, **_libpq_options()
        )
    except psycopg.Error as exc:
        raise _unreachable(url, exc) from exc
    return Database(connection=connection, vendor=POSTGRESQL, driver="psycopg")


def _connect_sqlite(url: str) -> Database:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = unquote(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else ""
    if not path:
        raise ConfigurationError(f"database URL {redact(url)!r} names no file")
    try:
        with open(path, "rb"):
            pass
        # One thread uses a connection at a time, but its owner may close it from another
        # (a relay run in a thread); sqlite3 would refuse that and leave it open.
        connection = sqlite3.connect(
            path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise _unreachable(url, exc) from exc
    return Database(connection=connection, vendor=SQLITE, paramstyle="qmark", driver=SQLITE)


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
