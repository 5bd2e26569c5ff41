"""`bulk_relate_cqrs_serialization()`: one query per model for CQRS_SERIALIZER rows (what
django-cqrs users import from `dj_cqrs.utils`, re-exported by `cqrs_outbox.utils`).

`bulk_relate_cqrs_serialization()` makes events of CQRS_SERIALIZER models read their rows
for serialization in one query per model and database, instead of one per row:

    with bulk_relate_cqrs_serialization():
        Publisher.cqrs.bulk_create(publishers)

Within it, each saved instance is noted; the first serialization then reads every noted
row not read yet with one `relate_cqrs_serialization(...).filter(pk__in=...)` query.
A new save of an instance drops its cached row, so an event never carries a stale one.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from contextlib import ContextDecorator
from typing import Any

from django.db import models

_state = threading.local()


class BulkRelateCM(ContextDecorator):
    """The rows noted and read for serialization while the context is active."""

    def __init__(self, cqrs_id: str | None = None) -> None:
        self.cqrs_id = cqrs_id
        self.noted: dict[str, dict[str | None, set]] = defaultdict(lambda: defaultdict(set))
        self.cache: dict[str, dict[str | None, dict]] = defaultdict(lambda: defaultdict(dict))

    def _covers(self, instance: Any) -> str | None:
        cqrs_id = getattr(instance, "CQRS_ID", None)
        if not cqrs_id or (self.cqrs_id and cqrs_id != self.cqrs_id):
            return None
        return cqrs_id

    def register(self, instance: Any, using: str | None = None) -> None:
        """Note that `instance` was saved on `using`; its row is read with the others."""
        cqrs_id = self._covers(instance)
        if cqrs_id is None:
            return
        self.cache[cqrs_id][using].pop(instance.pk, None)
        self.noted[cqrs_id][using].add(instance.pk)

    def get_cached_instance(self, instance: Any, using: str | None = None) -> Any:
        """Return the row of `instance` read for serialization, or None if not noted."""
        cqrs_id = self._covers(instance)
        if cqrs_id is None:
            return None
        cached = self.cache[cqrs_id][using]
        if instance.pk not in cached and instance.pk in self.noted[cqrs_id][using]:
            cached.update(_read(type(instance), using, self.noted[cqrs_id][using] - set(cached)))
        return cached.get(instance.pk)

    def __enter__(self) -> BulkRelateCM:
        _state.active = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.active = None


def _read(model_cls: Any, using: str | None, pks: set) -> dict:
    qs = model_cls.relate_cqrs_serialization(model_cls._default_manager.using(using))
    return {row.pk: row for row in qs.filter(pk__in=pks).order_by()}


def bulk_relate_cqrs_serialization(cqrs_id: str | None = None) -> BulkRelateCM:
    """Return a context manager (or decorator) that reads serialized rows in bulk.

    With `cqrs_id`, only that model's rows are read in bulk.
    """
    return BulkRelateCM(cqrs_id=cqrs_id)


def active_bulk_relate() -> BulkRelateCM | None:
    """Return the bulk-relate context active in this thread, if any."""
    return getattr(_state, "active", None)


def register_saved(instance: models.Model, using: str | None) -> None:
    """Note a saved instance with the active bulk-relate context, if there is one."""
    context = active_bulk_relate()
    if context is not None:
        context.register(instance, using)
