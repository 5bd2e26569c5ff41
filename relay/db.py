"""A thin database handle the store runs its SQL through: DB-API, any of our dialects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


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


def placeholders(values: Iterable[Any]) -> str:
    """Return `%s, %s, ...` for an IN list of `values`."""
    return ", ".join("%s" for _ in values)
