"""Turn master instances into the wire envelope django-cqrs replicas read."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from cqrs_outbox import conf, utils
from relay import contract

ALL_FIELDS = "__all__"
_STR_FIELDS = (models.DateField, models.DateTimeField, models.UUIDField)


def is_expression(value: Any) -> bool:
    """Tell whether `value` is an F() or other expression not yet read back."""
    return hasattr(value, "resolve_expression")


def _included(model_cls: type[models.Model]) -> set | None:
    fields = model_cls.CQRS_FIELDS
    return None if fields == ALL_FIELDS else set(fields)


def refresh_expressions(instance: models.Model, using: str) -> None:
    """Read back the fields a save wrote as expressions (`cqrs_revision = F() + 1`)."""
    stale = [
        f.attname
        for f in instance._meta.concrete_fields
        if is_expression(instance.__dict__.get(f.attname))
    ]
    if stale:
        instance.refresh_from_db(using=using, fields=stale)


def field_data(instance: models.Model) -> dict:
    """Serialise the model's fields as django-cqrs does (no serializer)."""
    included = _included(type(instance))
    data = {}
    for f in instance._meta.fields:
        if included is not None and f.name not in included:
            continue
        value = f.value_from_object(instance)
        if value is not None and isinstance(f, _STR_FIELDS):
            value = str(value)
        data[f.name] = value
    data["cqrs_revision"] = instance.cqrs_revision
    data["cqrs_updated"] = str(instance.cqrs_updated)
    return data


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
        bulk = utils.active_bulk_relate()  # bulk_relate_cqrs_serialization() read it already?
        cached = bulk.get_cached_instance(instance, using) if bulk else None
        if cached is None:
            qs = model_cls.relate_cqrs_serialization(model_cls._default_manager.using(using))
            cached = qs.get(pk=instance.pk)
        instance = cached
    data = dict(serializer_class(model_cls)(instance).data)
    data["cqrs_revision"] = instance.cqrs_revision
    data["cqrs_updated"] = str(instance.cqrs_updated)
    return data


def instance_data(instance: models.Model, using: str, fetch: bool = True) -> dict:
    """Return `instance_data` for a SAVE or SYNC event."""
    if instance.CQRS_SERIALIZER:
        return serializer_data(instance, using, fetch)
    refresh_expressions(instance, using)
    return field_data(instance)


def delete_data(instance: models.Model, revision: int) -> dict:
    """Return `instance_data` for a DELETE event of a row at `revision` before deletion."""
    data = {
        "id": instance.pk,
        "cqrs_revision": revision + 1,
        "cqrs_updated": str(timezone.now()),
    }
    custom = instance.get_custom_cqrs_delete_data()
    if custom:
        data["custom"] = custom
    return data


def expires_at(settings: conf.Settings) -> str | None:
    """Return the `expires` value for an event written now."""
    ttl = settings.master.message_ttl
    if ttl is None:
        return None
    moment = timezone.now() + datetime.timedelta(seconds=ttl)
    return moment.replace(microsecond=0).isoformat()


def correlation_id(settings: conf.Settings, signal_type: str, cqrs_id: str, pk: Any,
                   queue: str | None) -> Any:
    """Return the correlation id from the `correlation_function` setting, if any."""
    func = settings.master.correlation_function
    return func(signal_type, cqrs_id, pk, queue) if func else None


def envelope(instance: models.Model, signal_type: str, data: dict,
             previous: dict | None, queue: str | None = None) -> contract.Envelope:
    """Build the envelope of one event of `instance`."""
    settings = conf.get()
    meta_kwargs = {"instance_data": data, "signal_type": signal_type}
    if signal_type != contract.SIGNAL_DELETE:
        meta_kwargs["previous_data"] = previous
    return contract.Envelope(
        signal_type=signal_type,
        cqrs_id=instance.CQRS_ID,
        instance_data=data,
        instance_pk=contract.json_value(instance.pk),
        previous_data=previous,
        correlation_id=correlation_id(settings, signal_type, instance.CQRS_ID, instance.pk, queue),
        expires=expires_at(settings),
        meta=instance.get_cqrs_meta(**meta_kwargs),
    )
