"""Metaclasses and `register()` for models that cannot use the mixins' metaclass."""

from __future__ import annotations

from django.db.models import base

from cqrs_outbox import signals, tracker
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry


class _RegisteringMeta(base.ModelBase):
    """Call the metaclass's `register()` for every concrete model as it is defined."""

    def __new__(mcs, name, bases, attrs, **kwargs):
        model_cls = super().__new__(mcs, name, bases, attrs, **kwargs)
        if not model_cls._meta.abstract:
            mcs.register(model_cls)
        return model_cls


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
    """Register every concrete replica model as it is defined."""

    @staticmethod
    def register(model_cls):
        """Make `model_cls` a CQRS replica of its CQRS_ID."""
        ReplicaRegistry.register_model(model_cls)
        return model_cls
