"""Which database a bench runs on: `--database postgres|mariadb`, read before Django starts.

The test project's settings pick the database from CQRS_TEST_DB, so the choice must be
in the environment before `django.setup()`; argparse then lists the option for `--help`.
"""

from __future__ import annotations

import os

DATABASES = ("postgres", "mariadb")


def asked(argv: list[str]) -> str:
    """Return the `--database` of the command line (else CQRS_TEST_DB, else postgres)."""
    for i, arg in enumerate(argv):
        if arg == "--database" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--database="):
            return arg.split("=", 1)[1]
    return os.environ.get("CQRS_TEST_DB", "postgres")


def server() -> str:
    """Return the server and its version, e.g. `PostgreSQL 16` or `MariaDB 10.11.19`."""
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor == "mysql":
        kind = "MariaDB" if connection.mysql_is_mariadb else "MySQL"
        return f"{kind} {'.'.join(map(str, connection.mysql_version))}"
    return f"PostgreSQL {connection.pg_version // 10000}"
