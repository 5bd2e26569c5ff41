"""Call a replica model's own `cqrs_save` / `cqrs_delete`, exactly as django-cqrs does.

Like django-cqrs's, the replica manager does not raise on data it cannot apply or on a
write the database refuses: it logs an error and returns None (False for a delete). It
also reports the reason through `refuse()`, and `call()` collects those reports, so the
consumer learns why a handler returned nothing without the handler having to raise.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from django.db import models

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import HandlerFailed
from cqrs_outbox.core.escape import one_line

REASON_CHARS = 1000  # characters of a refusal's reason kept for logs and headers


@dataclass(frozen=True)
class Refusal:
    """Why a handler could not apply its data, and the error behind it if there was one."""

    reason: str
    error: BaseException | None = None


_refusals: contextvars.ContextVar[list[Refusal] | None] = contextvars.ContextVar(
    "cqrs_outbox_refusals", default=None
)


def refuse(logger: logging.Logger, reason: str, error: BaseException | None = None) -> None:
    """Log at ERROR why data cannot be applied, and tell the consumer if it is listening."""
    reason = one_line(reason, REASON_CHARS)
    logger.error("%s", reason)
    found = _refusals.get()
    if found is not None:
        found.append(Refusal(reason, error))


def consuming() -> bool:
    """Tell whether the consumer is calling the handler (rather than user code)."""
    return _refusals.get() is not None


def call(model: type, envelope: wire.Envelope) -> Any:
    """Hand one event to the model's handler; raise HandlerFailed on a falsy result.

    The error says why, when the handler reported it through `refuse()`.
    """
    token = _refusals.set([])
    try:
        result, name = _dispatch(model, envelope)
        refusals = _refusals.get() or []
    finally:
        _refusals.reset(token)
    if not result:
        message = f"{model.__name__}.{name}() returned {result!r}"
        if refusals:
            last = refusals[-1]
            raise HandlerFailed(f"{message}: {last.reason}", last.error)
        raise HandlerFailed(message)
    return result


def _dispatch(model: type, envelope: wire.Envelope) -> tuple[Any, str]:
    if envelope.signal_type == wire.SIGNAL_DELETE:
        if model.CQRS_META:
            result = model.cqrs_delete(envelope.instance_data, meta=envelope.meta)
        else:
            result = model.cqrs_delete(envelope.instance_data)
        name = "cqrs_delete"
    else:
        kwargs: dict = {"previous_data": envelope.previous_data}
        if model.CQRS_META:
            kwargs["meta"] = envelope.meta
        if envelope.signal_type == wire.SIGNAL_SYNC:
            kwargs["sync"] = True
        result = model.cqrs_save(envelope.instance_data, **kwargs)
        name = "cqrs_save"
    return result, name


def uses_bulk_path(model: type[models.Model]) -> bool:
    """Tell whether the model's events may be applied in bulk, bypassing its handlers.

    Only when nothing of the model's own would run: the handlers, the manager, `save()`
    and `delete()` are the mixin's, there are no model signal receivers, no custom
    serialization and no multi-table parent. Decided afresh on each call (the consumer
    asks once per batch), so a hook set or patched later is never bypassed.
    """
    same = default_writes(model) and not overridden(model, "cqrs_delete")
    same = same and not _manager_overrides(model, "delete_instance")
    same = same and _found(model, "save") is _found(models.Model, "save")
    same = same and _found(model, "delete") is _found(models.Model, "delete")
    same = same and not any(_fills_itself(f) for f in model._meta.concrete_fields)
    same = same and not model.CQRS_CUSTOM_SERIALIZATION and not model._meta.parents
    return same and not _has_receivers(model)


def default_writes(model: type[models.Model]) -> bool:
    """Tell whether the mixin's own `cqrs_save`, `cqrs_create` and `cqrs_update` (and the
    manager's) write the model's rows, so that no hook of the model sees the data."""
    hooks = ("cqrs_save", "cqrs_create", "cqrs_update")
    methods = ("save_instance", "create_instance", "update_instance")
    return not any(overridden(model, name) for name in hooks) and not any(
        _manager_overrides(model, name) for name in methods
    )


# The replica mixin's hooks and its manager's methods as their modules define them,
# registered there before anything (a test's mock on the mixin, say) can replace them: a
# model whose hook is anything else has its own.
OWN_HOOKS: dict[str, Any] = {}
OWN_METHODS: dict[str, Any] = {}


def overridden(model: type, name: str) -> bool:
    """Tell whether the hook `name` of `model` is anything but the mixin's own.

    The attribute is looked up on the class's MRO as stored there, so a staticmethod, a
    plain function, a mock on the model or on the mixin itself all count as overridden.
    """
    return _found(model, name) is not OWN_HOOKS[name]


def _manager_overrides(model: type[models.Model], name: str) -> bool:
    return _found(type(model.cqrs), name) is not OWN_METHODS[name]


def _found(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


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

