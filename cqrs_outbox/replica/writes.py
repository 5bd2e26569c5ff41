"""Write the net effect of a batch's applied events on one model, in a few statements.

Per row only the result matters: deletes first (with their tombstones), then one upsert
per set of columns for the rows that end up present. A row deleted and saved again in
the same batch is deleted and inserted afresh, as one event after the other would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models

from cqrs_outbox.core import wire
from cqrs_outbox.replica import mapping, queries


@dataclass
class _Row:
    delete: bool = False
    tombstone: int | None = None
    values: dict | None = None


@dataclass
class Plan:
    """The applied changes of one model in a batch, folded per row."""

    rows: dict = field(default_factory=dict)  # key -> _Row
    pks: dict = field(default_factory=dict)  # key -> pk value

    def add(self, change: mapping.Change, existed: bool) -> None:
        """Fold in an applied change; `existed` says whether the row was there before it."""
        row = self.rows.setdefault(change.key, _Row())
        self.pks[change.key] = change.pk
        if change.signal_type == wire.SIGNAL_DELETE:
            row.delete, row.tombstone, row.values = True, change.revision, None
        elif existed and row.values is not None:
            row.values = {**row.values, **change.values}
        else:
            row.values = dict(change.values or {})


def execute(model: type[models.Model], alias: str, plan: Plan) -> None:
    """Run the plan's deletes, tombstones and upserts."""
    doomed = [plan.pks[k] for k, row in plan.rows.items() if row.delete]
    if doomed:
        model._default_manager.using(alias).filter(pk__in=doomed).delete()
    queries.save_tombstones(
        alias,
        model.CQRS_ID,
        {k: row.tombstone for k, row in plan.rows.items() if row.tombstone is not None},
    )
    groups: dict[frozenset, list[dict]] = {}
    for row in plan.rows.values():
        if row.values is not None:
            groups.setdefault(frozenset(row.values), []).append(row.values)
    for columns, rows in groups.items():
        _upsert(model, alias, columns, rows)


def _upsert(model: type[models.Model], alias: str, columns: frozenset, rows: list[dict]) -> None:
    pk_attname = mapping.fields(model).pk_attname
    queries.upsert(model, alias, rows, sorted(c for c in columns if c != pk_attname))
