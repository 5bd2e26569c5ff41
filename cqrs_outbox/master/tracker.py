"""Remember the values of CQRS_TRACKED_FIELDS as loaded, for `previous_data`."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_init, post_save

from cqrs_outbox.core import contract
from cqrs_outbox.core.wire import json_value

SNAPSHOT_ATTR = "_cqrs_tracked_snapshot"
PREVIOUS_ATTR = "_cqrs_previous_data"
_MISSING = object()


def tracked_fields(model_cls: type[models.Model]) -> list[models.Field]:
    """Return the concrete fields named by CQRS_TRACKED_FIELDS (worked out once per class)."""
    found = model_cls.__dict__.get("_cqrs_tracked_fields")
    if found is None:
        declared = model_cls.CQRS_TRACKED_FIELDS
        fields = model_cls._meta.concrete_fields
        if declared == contract.ALL_FIELDS:
            found = list(fields)
        else:
            names = set(declared or ())
            found = [f for f in fields if f.name in names]
        model_cls._cqrs_tracked_fields = found
    return found


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _values(instance: models.Model) -> dict[str, Any]:
    values = {}
    loaded = instance.__dict__
    for f in tracked_fields(type(instance)):
        # Deferred fields are not loaded (reading them would query); F() values are
        # unknown until read back. Neither is compared.
        value = loaded.get(f.attname, _MISSING)
        if value is not _MISSING and not _is_expression(value):
            values[f.name] = json_value(value)
    return values


def _snapshot(sender: Any, instance: models.Model, **kwargs: Any) -> None:
    # `from_db` clears `_state.adding` only after __init__, so decide at capture time.
    instance.__dict__[SNAPSHOT_ATTR] = _values(instance)


def _after_save(sender: Any, instance: models.Model, **kwargs: Any) -> None:
    instance.__dict__[SNAPSHOT_ATTR] = _values(instance)


def install(model_cls: type[models.Model]) -> None:
    """Start tracking `model_cls` instances."""
    post_init.connect(_snapshot, sender=model_cls, weak=False)
    # Connected after the CQRS handler (registered later), so the event sees the old values.
    post_save.connect(
        _after_save, sender=model_cls, weak=False, dispatch_uid=f"cqrs-track-{id(model_cls)}"
    )


def capture(instance: models.Model, first_in_transaction: bool) -> dict | None:
    """Store and return the changed tracked fields with their previous values.

    Called as django-cqrs does, once the save has set `cqrs_revision`: a field assigned
    an F() expression counts as changed, with its value from before. A later save in the
    same transaction adds its changes but keeps the values from before the transaction,
    because the one event of the transaction replaces both.
    """
    before = instance.__dict__.get(SNAPSHOT_ATTR)
    if before is None:
        return None
    loaded = instance.__dict__
    changed = {}
    for f in tracked_fields(type(instance)):
        value = loaded.get(f.attname, _MISSING)
        if value is _MISSING:
            continue
        if instance._state.adding:
            # django-cqrs names foreign keys by attname (author_id) on create only.
            if value is not None:
                changed[f.attname] = None
        elif _is_expression(value) or before.get(f.name) != json_value(value):
            changed[f.name] = before.get(f.name)
    if not first_in_transaction:
        changed.update(instance.__dict__.get(PREVIOUS_ATTR) or {})
    instance.__dict__[PREVIOUS_ATTR] = changed
    return changed


def resolved(instance: models.Model) -> None:
    """Take into the snapshot the values of fields read back after an F() save."""
    snapshot = instance.__dict__.get(SNAPSHOT_ATTR)
    if snapshot is not None:
        snapshot.update(_values(instance))


def previous_data(instance: models.Model) -> dict | None:
    """Return what `capture` stored, or None for untracked models."""
    return instance.__dict__.get(PREVIOUS_ATTR)


def carry_over(old: models.Model, new: models.Model) -> None:
    """Set `new`'s previous data to every tracked value `old` had, as django-cqrs's
    bulk update does."""
    new.__dict__[PREVIOUS_ATTR] = _values(old)
