"""The metaclass and `register()` of replica models, for models that cannot use the mixin."""

from __future__ import annotations

from cqrs_outbox.registry import RegisteringMeta, ReplicaRegistry


class ReplicaMeta(RegisteringMeta):
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
