"""Row estimates for the admin's changelist on MySQL and MariaDB, in place of COUNT(*).

The whole table: InnoDB's own estimate in information_schema (TABLE_ROWS), as the
PostgreSQL path takes the planner's from the table's statistics. A filtered list: the
rows the optimizer expects its plan to yield (EXPLAIN), with no row read either way.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connections, models


def estimated_rows(qs: models.QuerySet) -> int:
    """Return the server's estimate of how many rows `qs` yields, without running it."""
    if not qs.query.where:
        return table_rows(qs.db, qs.model._meta.db_table)
    return explained_rows(qs)


def table_rows(alias: str, table: str) -> int:
    """Return InnoDB's estimate of the rows in `table` (kept by its statistics)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [table],
        )
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


def explained_rows(qs: models.QuerySet) -> int:
    """Return the rows EXPLAIN expects from the first table of `qs`'s plan."""
    plan = json.loads(qs.order_by().explain(format="json"))
    if isinstance(plan, str):  # Django hands MariaDB's JSON back quoted as a string
        plan = json.loads(plan)
    table = _first_table(plan) or {}
    rows = table.get("rows", table.get("rows_produced_per_join", 0))  # MariaDB, MySQL
    filtered = float(table.get("filtered", 100))
    return int(float(rows) * filtered / 100)


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
