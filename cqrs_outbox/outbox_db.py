"""Hand a Django database connection to the framework-free relay store."""

from __future__ import annotations

from django.db import connections

from relay.db import Database


def database(alias: str = "default") -> Database:
    """Return a `relay.db.Database` over Django's connection `alias`."""
    connection = connections[alias]
    connection.ensure_connection()
    driver = connection.Database.__name__.split(".")[0]  # psycopg, psycopg2, sqlite3, ...
    return Database(
        connection=connection, vendor=connection.vendor, paramstyle="format", driver=driver
    )
