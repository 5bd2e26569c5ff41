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
    tombstone: tuple | None = None  # (revision, updated) to record
    forget: bool = False  # drop the tombstone: a repair restated the row
    values: dict | None = None


@dataclass
class Plan:
    """The applied changes of one model in a batch, folded per row."""

    rows: dict = field(default_factory=dict)  # key -> _Row
    pks: dict = field(default_factory=dict)  # key -> pk value

    def add(self, change: mapping.Change, existed: bool, repair: bool = False) -> None:
        """Fold in an applied change; `existed` says whether the row was there before it.

        A repair also drops the row's tombstone.
        """
        row = self.rows.setdefault(change.key, _Row())
        self.pks[change.key] = change.pk
        if change.signal_type == wire.SIGNAL_DELETE:
            row.delete, row.values = True, None
            row.tombstone, row.forget = (change.revision, change.updated), False
            return
        if repair:
            row.tombstone, row.forget = None, True
        if existed and row.values is not None:
            row.values = {**row.values, **change.values}
        else:
            row.values = dict(change.values or {})

    def forget(self, change: mapping.Change) -> None:
        """Drop the row's tombstone (a repair its model's own handlers apply)."""
        row = self.rows.setdefault(change.key, _Row())
        self.pks[change.key] = change.pk
        row.tombstone, row.forget = None, True

    def mark(self, change: mapping.Change) -> None:
        """Record the tombstone of a DELETE that did not remove the row (an older one)."""
        row = self.rows.setdefault(change.key, _Row())
        self.pks[change.key] = change.pk
        row.tombstone, row.forget = (change.revision, change.updated), False


def execute(model: type[models.Model], alias: str, plan: Plan) -> None:
    """Run the plan's deletes, tombstones and upserts."""
    doomed = [plan.pks[k] for k, row in plan.rows.items() if row.delete]
    if doomed:
        model._default_manager.using(alias).filter(pk__in=doomed).delete()
    queries.forget_tombstones(alias, model.CQRS_ID,
                              [k for k, row in plan.rows.items() if row.forget])
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
