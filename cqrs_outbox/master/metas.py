"""The metaclass and `register()` of master models, for models that cannot use the mixin."""

from __future__ import annotations

from cqrs_outbox.master import capture, signals, tracker
from cqrs_outbox.registry import MasterRegistry, RegisteringMeta


class MasterMeta(RegisteringMeta):
    """Register every concrete master model as it is defined."""

    @staticmethod
    def register(model_cls):
        """Make `model_cls` a CQRS master: track its fields and write its events."""
        if model_cls.CQRS_TRACKED_FIELDS is not None:
            tracker.install(model_cls)
        capture.install(model_cls)
        MasterRegistry.register_model(model_cls)
        signals.MasterSignals.register_model(model_cls)
        return model_cls
