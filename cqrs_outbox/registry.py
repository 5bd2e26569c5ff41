"""Which models are masters and replicas, by CQRS_ID."""

from __future__ import annotations

import logging

from django.db import models
from django.db.models import base

logger = logging.getLogger(__name__)


class Registry:
    """Models by CQRS_ID. A second model with the same id is recorded, not raised:
    the system checks report it with the two model names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.models: dict[str, type[models.Model]] = {}
        self.duplicates: list[tuple[str, type[models.Model], type[models.Model]]] = []

    def register_model(self, model_cls: type[models.Model]) -> None:
        """Register `model_cls` under its CQRS_ID."""
        cqrs_id = model_cls.CQRS_ID
        known = self.models.get(cqrs_id)
        if known is not None and _abstract(known) and issubclass(model_cls, known):
            known = None  # a subclass of an abstract replica inherits its CQRS_ID: it wins
        if known is not None and known is not model_cls and _label(known) != _label(model_cls):
            self.duplicates.append((cqrs_id, known, model_cls))
            return
        self.models[cqrs_id] = model_cls

    def get_model_by_cqrs_id(self, cqrs_id: str) -> type[models.Model] | None:
        """Return the model registered as `cqrs_id`, or None."""
        return self.models.get(cqrs_id)


def _abstract(model_cls: type[models.Model]) -> bool:
    meta = getattr(model_cls, "_meta", None)
    return bool(meta is not None and meta.abstract)


def _label(model_cls: type[models.Model]) -> str:
    return f"{model_cls.__module__}.{model_cls.__qualname__}"


MasterRegistry = Registry("master")
ReplicaRegistry = Registry("replica")


class RegisteringMeta(base.ModelBase):
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
