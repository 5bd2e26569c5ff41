"""Call a replica model's own `cqrs_save` / `cqrs_delete`, exactly as django-cqrs does."""

from __future__ import annotations

from typing import Any

from django.db import models

from relay import contract
from relay.exceptions import CQRSOutboxError


class HandlerFailed(CQRSOutboxError):
    """A model's handler returned nothing, which django-cqrs counts as a failure."""


def call(model: type, envelope: contract.Envelope) -> Any:
    """Hand one event to the model's handler; raise HandlerFailed on a falsy result."""
    if envelope.signal_type == contract.SIGNAL_DELETE:
        if model.CQRS_META:
            result = model.cqrs_delete(envelope.instance_data, meta=envelope.meta)
        else:
            result = model.cqrs_delete(envelope.instance_data)
        name = "cqrs_delete"
    else:
        kwargs: dict = {"previous_data": envelope.previous_data}
        if model.CQRS_META:
            kwargs["meta"] = envelope.meta
        if envelope.signal_type == contract.SIGNAL_SYNC:
            kwargs["sync"] = True
        result = model.cqrs_save(envelope.instance_data, **kwargs)
        name = "cqrs_save"
    if not result:
        raise HandlerFailed(f"{model.__name__}.{name}() returned {result!r}")
    return result


def uses_bulk_path(model: type[models.Model]) -> bool:
    """Tell whether the model's events may be applied in bulk, bypassing its handlers.

    Only when nothing of the model's own would run: the handlers, the manager, `save()`
    and `delete()` are the mixin's, there are no model signal receivers, no custom
    serialization and no multi-table parent.
    """
    code_free = model.__dict__.get("_cqrs_code_free")
    if code_free is None:
        code_free = model._cqrs_code_free = _own_code_free(model)
    return code_free and not _has_receivers(model)


def _own_code_free(model: type[models.Model]) -> bool:
    from cqrs_outbox.managers import ReplicaManager
    from cqrs_outbox.mixins import ReplicaMixin

    same = all(
        getattr(model, name).__func__ is getattr(ReplicaMixin, name).__func__
        for name in ("cqrs_save", "cqrs_create", "cqrs_delete")
    )
    manager = type(model.cqrs)
    same = same and model.cqrs_update is ReplicaMixin.cqrs_update
    same = same and all(
        getattr(manager, name) is getattr(ReplicaManager, name)
        for name in ("save_instance", "create_instance", "update_instance", "delete_instance")
    )
    same = same and model.save is models.Model.save and model.delete is models.Model.delete
    same = same and not any(_fills_itself(f) for f in model._meta.concrete_fields)
    return same and not model.CQRS_CUSTOM_SERIALIZATION and not model._meta.parents


def _fills_itself(field: models.Field) -> bool:
    # Values Django computes on save (auto_now) or the database supplies (db_default)
    # need the model's own save path.
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)) or (
        getattr(field, "db_default", models.NOT_PROVIDED) is not models.NOT_PROVIDED
    )


def _has_receivers(model: type[models.Model]) -> bool:
    signals = models.signals
    return any(
        signal.has_listeners(model)
        for signal in (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete)
    )

