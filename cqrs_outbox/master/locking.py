"""Row locks for the master's reads that must not be overtaken (SYNC), on every database."""

from __future__ import annotations

from django.db import connections, models


def for_update(queryset: models.QuerySet, alias: str) -> models.QuerySet:
    """Return `queryset` reading its model's rows under `SELECT ... FOR UPDATE`.

    Only the model's own rows where the database can name them (`FOR UPDATE OF`, which
    PostgreSQL needs beside the outer joins of `relate_cqrs_serialization`); MariaDB
    cannot, and locks the joined rows as well, which it allows with outer joins.
    """
    if connections[alias].features.has_select_for_update_of:
        return queryset.select_for_update(of=("self",))
    return queryset.select_for_update()
