"""The ORM's bulk paths write events: `update()`, `bulk_update()` and `bulk_create()`.

django-cqrs publishes from `save()` and `delete()` only, so `filter(...).update(...)` and
the bulk calls change rows that never reach the replicas. Here every manager of a master
model (`objects`, custom managers, the `cqrs` manager and, through them, related
managers) hands out querysets whose bulk calls raise `cqrs_revision`, set `cqrs_updated`
and queue one SAVE event per row, in the same transaction and through the same
commit-time flush as `save()`. `QuerySet.delete()` needs nothing here: Django sends
`pre_delete`/`post_delete` per row for models with receivers, which master models have,
so it never takes its fast path for them.

`CQRS['master']['capture'] = 'off'` (or `CQRS_CAPTURE = 'off'` on a model) keeps
django-cqrs's silent bulk calls.

How the rows are named:
- PostgreSQL and SQLite: the `UPDATE` returns the changed rows (`RETURNING`), and the
  events are built from them: one statement, no read before or after.
- MySQL/MariaDB (no `UPDATE ... RETURNING`), a queryset whose class overrides
  `update()`, a multi-table model, an annotated queryset or a model with
  CQRS_TRACKED_FIELDS: the pks are read first under `SELECT ... FOR UPDATE`, the rows
  are updated by pk and read back.
"""

from __future__ import annotations

import contextvars
import copy
import logging
from typing import Any

from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db import connections, models, transaction
from django.db.models import F
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from cqrs_outbox import conf, store
from cqrs_outbox.master import locking, signals, tracker

logger = logging.getLogger(__name__)

ORM, DATABASE, OFF = conf.CAPTURE_ORM, conf.CAPTURE_DATABASE, conf.CAPTURE_OFF
MODES = conf.CAPTURE_MODES
CHUNK = 500  # pks per `pk__in` when rows are updated and read back by pk
_REVISION = "cqrs_revision"
_UPDATED = "cqrs_updated"
# While bulk_update runs: the rows its update() calls wrote events for, by pk.
_updated_rows: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "cqrs_outbox_updated_rows", default=None)


def mode(model_cls: type[models.Model]) -> str:
    """Return how changes of `model_cls` are captured: 'orm', 'database' or 'off'."""
    own = getattr(model_cls, "CQRS_CAPTURE", None)
    return own if own is not None else conf.get().master.capture


def captures(model_cls: type[models.Model]) -> bool:
    """Tell whether bulk writes of `model_cls` write events."""
    return bool(model_cls.CQRS_PRODUCE) and mode(model_cls) in (ORM, DATABASE)


class CapturingQuerySet(models.QuerySet):
    """Bulk calls that write one SAVE event per row they change (mixed in first)."""

    def update(self, **kwargs: Any) -> int:
        if not kwargs or not captures(self.model):
            return super().update(**kwargs)
        kwargs.setdefault(_REVISION, F(_REVISION) + 1)
        kwargs.setdefault(_UPDATED, timezone.now())
        alias = self.db
        with transaction.atomic(using=alias, savepoint=False):
            if _can_return(self, alias):
                instances = _update_returning(self, alias, kwargs)
                before: dict = {}
            else:
                instances, before = _update_by_pk(self, alias, kwargs)
            _queue(self.model, instances, before, alias)
        self._result_cache = None
        return len(instances)

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        if not captures(self.model):
            return super().bulk_update(objs, fields, batch_size=batch_size)
        objs, fields = tuple(objs), list(fields)
        now = timezone.now()
        for obj in objs:
            obj.cqrs_revision = F(_REVISION) + 1
            obj.cqrs_updated = now
        fields += [name for name in (_REVISION, _UPDATED) if name not in fields]
        # Django's bulk_update runs one update() per batch, through the method above,
        # which writes the events from the rows as updated.
        written: dict = {}
        token = _updated_rows.set(written)
        try:
            with transaction.atomic(using=self.db, savepoint=False):
                rows = super().bulk_update(objs, fields, batch_size=batch_size)
        finally:
            _updated_rows.reset(token)
        for obj in objs:  # the values the rows now hold, as save() leaves them
            row = written.get(obj.pk)
            if row is not None:
                obj.cqrs_revision, obj.cqrs_updated = row.cqrs_revision, row.cqrs_updated
        return rows

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list:
        if not captures(self.model):
            return super().bulk_create(objs, *args, **kwargs)
        objs = list(objs)
        alias = self.db
        for obj in objs:
            tracker.capture(obj, first_in_transaction=True)
        with transaction.atomic(using=alias, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            named = [obj for obj in created if obj.pk is not None]
            _queue(self.model, named, {}, alias)
        if len(named) < len(created):
            logger.warning(
                "bulk_create of %d %s rows: the database returned no primary key for %d of "
                "them, so they have no event; give the rows their primary keys, or run "
                "cqrs_sync for them", len(created), self.model.__name__, len(created) - len(named))
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]


def _can_return(queryset: models.QuerySet, alias: str) -> bool:
    connection = connections[alias]
    opts = queryset.model._meta
    return (
        getattr(store.dialect_of(connection), "UPDATE_RETURNING", False)
        and connection.features.can_return_rows_from_bulk_insert  # SQLite 3.35+
        and _own_update(queryset)
        and not queryset.query.annotations
        and not getattr(opts, "is_composite_pk", False)
        and opts.concrete_model is queryset.model
        and not opts.parents
        and getattr(queryset.model, "CQRS_TRACKED_FIELDS", None) is None
    )


def _own_update(queryset: models.QuerySet) -> bool:
    # The queryset class behind ours must not have an update() of its own, which the
    # one-statement path would skip.
    for klass in type(queryset).__mro__:
        if issubclass(klass, CapturingQuerySet):
            continue  # ours, and the classes made to mix it in
        if "update" in klass.__dict__:
            return klass is models.QuerySet
    return True


def _update_returning(queryset: models.QuerySet, alias: str, kwargs: dict) -> list:
    """Run the UPDATE with `RETURNING` every concrete column; return the rows as models."""
    model_cls = queryset.model
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(kwargs)
    query.clear_ordering(force=True)
    compiler = query.get_compiler(alias)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # a filter that matches nothing, such as pk__in=[]
        return []
    if not sql:
        return []
    fields = model_cls._meta.concrete_fields
    quote = compiler.connection.ops.quote_name
    sql = f"{sql} RETURNING {', '.join(quote(f.column) for f in fields)}"
    with compiler.connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converters = compiler.get_converters([f.get_col(model_cls._meta.db_table) for f in fields])
    if converters:
        rows = compiler.apply_converters(rows, converters)
    names = [f.attname for f in fields]
    return [model_cls.from_db(alias, names, tuple(row)) for row in rows]


def _update_by_pk(queryset: models.QuerySet, alias: str, kwargs: dict) -> tuple[list, dict]:
    """Lock the rows' pks, update them by pk and read them back (MySQL, MariaDB and the
    querysets the one-statement path cannot take)."""
    model_cls = queryset.model
    base = model_cls._base_manager.using(alias)
    picked = queryset.order_by().values_list("pk", flat=True)
    if picked.query.distinct or picked.query.annotations:
        # FOR UPDATE cannot go with DISTINCT or aggregates: name the rows, then lock them.
        picked = base.filter(pk__in=list(picked)).values_list("pk", flat=True)
    ids = list(locking.for_update(picked.order_by("pk"), alias))
    before = {}
    if getattr(model_cls, "CQRS_TRACKED_FIELDS", None) is not None and ids:
        before = {obj.pk: obj for obj in _chunked(base, ids)}
    for chunk in _chunks(ids):
        super(CapturingQuerySet, _same_class(queryset, base.filter(pk__in=chunk))).update(
            **kwargs)
    return list(_chunked(base, ids)), before


def _same_class(queryset: models.QuerySet, other: models.QuerySet) -> models.QuerySet:
    # The queryset's own class, so an update() it overrides still runs.
    clone = other._chain()  # not copy.copy(), which pickles and so runs the query
    clone.__class__ = type(queryset)
    return clone


def _chunks(ids: list) -> list[list]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _chunked(base: models.QuerySet, ids: list) -> list:
    found = []
    for chunk in _chunks(ids):
        found.extend(base.filter(pk__in=chunk).order_by("pk"))
    return found


def _queue(model_cls: type[models.Model], instances: list, before: dict, alias: str) -> None:
    written = _updated_rows.get()
    for instance in instances:
        if written is not None:
            written[instance.pk] = instance
        if instance.pk in before:
            tracker.carry_over(before[instance.pk], instance)
        signals.queue_save(model_cls, instance, alias)


# -- Installing the querysets on a master model's managers ----------------------------

_QUERYSETS: dict[type, type] = {}
_MANAGERS: dict[type, type] = {}


def _capturing_queryset(queryset_class: type) -> type:
    if issubclass(queryset_class, CapturingQuerySet):
        return queryset_class
    found = _QUERYSETS.get(queryset_class)
    if found is None:
        name = f"Capturing{queryset_class.__name__}_{len(_QUERYSETS)}"
        found = type(name, (CapturingQuerySet, queryset_class), {"__module__": __name__})
        globals()[name] = found  # importable by name, so querysets still pickle
        _QUERYSETS[queryset_class] = found
    return found


class _CapturingManager:
    """Mixed into a master model's manager classes; migrations see the original class."""

    _cqrs_original_class: type

    def deconstruct(self) -> tuple:
        original = copy.copy(self)
        original.__class__ = self._cqrs_original_class
        return original.deconstruct()


def _capturing_manager(manager_class: type) -> type:
    if issubclass(manager_class, _CapturingManager):
        return manager_class
    found = _MANAGERS.get(manager_class)
    if found is None:
        name = f"Capturing{manager_class.__name__}_{len(_MANAGERS)}"
        found = type(name, (_CapturingManager, manager_class), {
            "__module__": __name__,
            "_cqrs_original_class": manager_class,
            "_queryset_class": _capturing_queryset(manager_class._queryset_class),
        })
        globals()[name] = found
        _MANAGERS[manager_class] = found
    return found


def install(model_cls: type[models.Model]) -> None:
    """Give every manager of `model_cls` querysets whose bulk calls write events.

    The managers' classes are swapped for subclasses, so the related managers Django
    builds from a model's default manager class capture as well. Raises
    ImproperlyConfigured for a CQRS_CAPTURE that is not one of the modes.
    """
    own = getattr(model_cls, "CQRS_CAPTURE", None)
    if own is not None and own not in MODES:
        raise ImproperlyConfigured(
            f"{model_cls.__qualname__}.CQRS_CAPTURE is {own!r}: use one of "
            f"{', '.join(map(repr, MODES))}, or None to follow CQRS['master']['capture'].")
    for manager in model_cls._meta.managers:
        queryset_class = getattr(manager, "_queryset_class", None)
        if queryset_class is not None and issubclass(queryset_class, models.QuerySet):
            manager.__class__ = _capturing_manager(type(manager))

