"""Turn master instances into the wire envelope django-cqrs replicas read."""

from __future__ import annotations

import time
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from cqrs_outbox import conf
from cqrs_outbox.core import contract, wire
from cqrs_outbox.master import relate, tracker

_STR_FIELDS = (models.DateField, models.DateTimeField, models.UUIDField)
_PLAIN = {type(None), int, str, bool, float}  # values that are never expressions


def is_expression(value: Any) -> bool:
    """Tell whether `value` is an F() or other expression not yet read back."""
    return hasattr(value, "resolve_expression")


def _included(model_cls: type[models.Model]) -> set | None:
    fields = model_cls.CQRS_FIELDS
    return None if fields == contract.ALL_FIELDS else set(fields)


def refresh_expressions(instance: models.Model, using: str) -> None:
    """Read back the fields a save wrote as expressions (`cqrs_revision = F() + 1`)."""
    stale = expression_fields(instance)
    if stale:
        instance.refresh_from_db(using=using, fields=stale)
        tracker.resolved(instance)


def expression_fields(instance: models.Model) -> list[str]:
    """Return the attnames of `instance` that hold an expression not yet read back."""
    model_cls = type(instance)
    attnames = model_cls.__dict__.get("_cqrs_attnames")
    if attnames is None:
        attnames = model_cls._cqrs_attnames = tuple(
            f.attname for f in model_cls._meta.concrete_fields
        )
    loaded = instance.__dict__
    return [a for a in attnames if type(loaded.get(a)) not in _PLAIN and is_expression(loaded[a])]


def refresh_many(model_cls: type[models.Model], using: str, attnames: list[str],
                 instances: list[models.Model]) -> None:
    """Read back `attnames` of `instances` in one query, where they hold expressions."""
    rows = (
        model_cls._base_manager.using(using)
        .filter(pk__in=[instance.pk for instance in instances])
        .values_list("pk", *attnames)
    )
    found = {row[0]: row[1:] for row in rows}
    for instance in instances:
        values = found.get(instance.pk)
        if values is None:
            continue  # gone: the builder's own read reports it
        loaded = instance.__dict__
        for attname, value in zip(attnames, values, strict=True):
            if is_expression(loaded.get(attname)):
                loaded[attname] = value
        tracker.resolved(instance)


def _plan(model_cls: type[models.Model]) -> list[tuple[str, str, bool, Any]]:
    # Worked out once per class: (name, attname, send as str, field when it has its own
    # value_from_object). Read from the class's own __dict__, so subclasses get theirs.
    plan = model_cls.__dict__.get("_cqrs_field_plan")
    if plan is None:
        included = _included(model_cls)
        plan = [
            (
                f.name,
                f.attname,
                isinstance(f, _STR_FIELDS),
                None if type(f).value_from_object is models.Field.value_from_object else f,
            )
            for f in model_cls._meta.fields
            if included is None or f.name in included
        ]
        model_cls._cqrs_field_plan = plan
    return plan


def field_data(instance: models.Model) -> dict:
    """Serialise the model's fields as django-cqrs does (no serializer)."""
    data = {}
    loaded = instance.__dict__
    for name, attname, as_str, field in _plan(type(instance)):
        if field is not None:
            value = field.value_from_object(instance)
        elif attname in loaded:
            value = loaded[attname]
        else:  # deferred: let the descriptor load it
            value = getattr(instance, attname)
        if as_str and value is not None:
            value = str(value)
        data[name] = value
    return wire.stamp(data, instance.cqrs_revision, instance.cqrs_updated)


def serializer_class(model_cls: type[models.Model]) -> Any:
    """Import the model's CQRS_SERIALIZER (once per class)."""
    cached = model_cls.__dict__.get("_cqrs_serializer_class")
    if cached is None:
        cached = import_string(model_cls.CQRS_SERIALIZER)
        model_cls._cqrs_serializer_class = cached
    return cached


def serializer_data(instance: models.Model, using: str, fetch: bool) -> dict:
    """Serialise with CQRS_SERIALIZER, reading the row through relate_cqrs_serialization."""
    model_cls = type(instance)
    if fetch:
        bulk = relate.active_bulk_relate()  # bulk_relate_cqrs_serialization() read it already?
        cached = bulk.get_cached_instance(instance, using) if bulk else None
        if cached is None:
            qs = model_cls.relate_cqrs_serialization(model_cls._default_manager.using(using))
            cached = qs.get(pk=instance.pk)
        instance = cached
    data = dict(serializer_class(model_cls)(instance).data)
    return wire.stamp(data, instance.cqrs_revision, instance.cqrs_updated)


def instance_data(instance: models.Model, using: str, fetch: bool = True) -> dict:
    """Return `instance_data` for a SAVE or SYNC event."""
    if instance.CQRS_SERIALIZER:
        return serializer_data(instance, using, fetch)
    refresh_expressions(instance, using)
    return field_data(instance)


def delete_data(instance: models.Model, revision: int, deleted_at: Any = None) -> dict:
    """Return `instance_data` for a DELETE event of a row at `revision` before deletion,
    deleted at `deleted_at` (default: now)."""
    custom = instance.get_custom_cqrs_delete_data()
    return wire.delete_data(instance.pk, revision, deleted_at or timezone.now(), custom)


_expires_memo: tuple = (None, None, None)  # (whole second, ttl, value)


def expires_at(settings: conf.Settings) -> str | None:
    """Return the `expires` value for an event written now (whole seconds, as ISO text)."""
    ttl = settings.master.message_ttl
    if ttl is None:
        return None
    global _expires_memo
    second = int(time.time())
    if _expires_memo[:2] != (second, ttl):
        _expires_memo = (second, ttl, wire.expires_after(timezone.now(), ttl))
    return _expires_memo[2]


def body(instance: models.Model, signal_type: str, data: dict, previous: dict | None,
         queue: str | None, settings: conf.Settings) -> dict:
    """Return the body of one event of `instance`, as `wire.Envelope.to_dict()` gives it."""
    cqrs_id = instance.CQRS_ID
    pk = instance.pk
    master = settings.master
    func = master.correlation_function
    # Straight to the dict: building a frozen Envelope first cost about 20,000
    # instructions an event (bench/instructions.py).
    return wire.body_dict(
        signal_type, cqrs_id, data, previous, pk,
        func(signal_type, cqrs_id, pk, queue) if func else None,
        0, expires_at(settings),
        _meta(instance, signal_type, data, previous, master.meta_function),
    )


def _meta(instance: models.Model, signal_type: str, data: dict, previous: dict | None,
          func: Any) -> Any:
    kwargs = {"instance_data": data, "signal_type": signal_type}
    if signal_type != wire.SIGNAL_DELETE:
        kwargs["previous_data"] = previous
    # The default get_cqrs_meta() only calls the `meta_function` setting: called here with
    # the settings the builder holds already. A model's own is called as it is.
    if type(instance).get_cqrs_meta is get_cqrs_meta:
        return func(obj=instance, **kwargs) if func else {}
    return instance.get_cqrs_meta(**kwargs)


def get_cqrs_meta(instance: models.Model, **kwargs: Any) -> dict:
    """Return metadata for the event; calls the `meta_function` setting by default (the
    master mixin's `get_cqrs_meta()`, unless the model has its own)."""
    func = conf.get().master.meta_function
    return func(obj=instance, **kwargs) if func else {}


def to_cqrs_dict(instance: models.Model, using: str | None = None, sync: bool = False) -> dict:
    """Return `instance_data` as the next event would carry it (the master mixin's
    `to_cqrs_dict()`, unless the model has its own)."""
    return instance_data(instance, using or instance._cqrs_alias(), fetch=not sync)


def own_dict(model_cls: type) -> bool:
    """Tell whether `model_cls` has a `to_cqrs_dict()` of its own (or a mock of one)."""
    return model_cls.to_cqrs_dict is not to_cqrs_dict
