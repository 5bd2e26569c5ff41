"""Open MySQL 8 and MariaDB 10.6+ databases for the relay: `mysql://` URLs, mysqlclient.

`mysql://user:password@host:port/name` (also `mariadb://`); a `?charset=` or other query
is not read: the connection is always utf8mb4, in autocommit mode, with UTC sessions.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from cqrs_outbox.core.errors import ConfigurationError

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


def is_mariadb(raw: Any) -> bool:
    """Return whether a mysqlclient connection talks to MariaDB (rather than MySQL)."""
    info = getattr(raw, "get_server_info", None)
    return info is not None and "mariadb" in str(info()).lower()
