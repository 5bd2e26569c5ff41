"""Metaclasses and `register()` for models that cannot use the mixins' metaclass."""

from __future__ import annotations

from django.db.models import base

from cqrs_outbox import signals, tracker
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry


class _RegisteringMeta(base.ModelBase):
    """Call the metaclass's `register()` for every concrete model as it is defined."""

    def __new__(mcs, name, bases, attrs, **kwargs):
        model_cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        if mcs.registers(model_cls):
            mcs.register(model_cls)
        return model_cls

    @classmethod
    def registers(mcs, model_cls) -> bool:
        """Tell whether `model_cls` is registered as it is defined."""
        return not model_cls._meta.abstract


class MasterMeta(_RegisteringMeta):
    """Register every concrete master model as it is defined."""

    @staticmethod
    def register(model_cls):
        """Make `model_cls` a CQRS master: track its fields and write its events."""
        if model_cls.CQRS_TRACKED_FIELDS is not None:
            tracker.install(model_cls)
        MasterRegistry.register_model(model_cls)
        signals.MasterSignals.register_model(model_cls)
        return model_cls


class ReplicaMeta(_RegisteringMeta):
    """Register every replica model as it is defined, abstract ones too.

    As in django-cqrs, an abstract model with a CQRS_ID is a replica: one with
    `CQRS_NO_DB_OPERATIONS = True` takes its events in its own `cqrs_save` and
    `cqrs_delete` without a table. An abstract base without a CQRS_ID is a base only.
    """

    @classmethod
    def registers(mcs, model_cls) -> bool:
        """Tell whether `model_cls` is registered as it is defined."""
        return not model_cls._meta.abstract or bool(model_cls.CQRS_ID)

    @staticmethod
    def register(model_cls):
        """Make `model_cls` a CQRS replica of its CQRS_ID."""
        ReplicaRegistry.register_model(model_cls)
        return model_cls
