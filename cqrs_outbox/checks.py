"""System checks: every misconfiguration is reported with an id and a hint."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from cqrs_outbox import conf, keyring
from cqrs_outbox.core import contract
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry
from cqrs_outbox.replica import signatures


def _models(kind: str) -> list:
    from cqrs_outbox.master.mixins import RawMasterMixin
    from cqrs_outbox.replica.mixins import RawReplicaMixin

    base = RawMasterMixin if kind == "master" else RawReplicaMixin
    found = [m for m in apps.get_models() if issubclass(m, base)]
    registry = MasterRegistry if kind == "master" else ReplicaRegistry
    found += [m for m in registry.models.values() if m not in found]
    return found


def _message(problem: conf.Problem, obj: Any = None) -> checks.CheckMessage:
    cls = checks.Warning if problem.warning else checks.Error
    return cls(problem.msg, hint=problem.hint, obj=obj, id=problem.id)


@checks.register("cqrs_outbox")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """Check the `CQRS` settings dict."""
    if not (_models("master") or _models("replica")) and not hasattr(settings, "CQRS"):
        return []
    if not hasattr(settings, "CQRS"):
        return [
            checks.Error(
                "settings.CQRS is missing, but the project has CQRS models.",
                hint="Add CQRS = {'url': 'amqp://user:password@host:5672/vhost'} to settings "
                "(and 'queue': '<name>' on a replica service).",
                id="cqrs_outbox.E024",
            )
        ]
    found = [_message(p) for p in conf.problems(settings.CQRS)]
    found += [_message(p) for p in keyring.problems(settings.CQRS)]
    if isinstance(settings.CQRS, dict):
        found += [_message(p) for p in signatures.retention_problems(settings.CQRS)]
    cqrs = settings.CQRS
    found += _meta_function_problems(cqrs)
    if _models("replica") and isinstance(cqrs, dict) and cqrs.get("queue") is None:
        found.append(
            checks.Error(
                "CQRS['queue'] is not set, but the project has replica models.",
                hint="Set CQRS['queue'] to this replica service's queue name, "
                "e.g. 'orders_replica'.",
                id="cqrs_outbox.E016",
            )
        )
    return found


def _meta_function_problems(cqrs: Any) -> list:
    # It is called as meta_function(obj=..., instance_data=..., previous_data=...,
    # signal_type=...) at every commit: one that cannot take that fails every save.
    master = cqrs.get("master") if isinstance(cqrs, dict) else None
    value = master.get("meta_function") if isinstance(master, dict) else None
    if not value or not (callable(value) or isinstance(value, str)):
        return []  # absent, or a wrong type conf.problems reports
    try:
        func = import_string(value) if isinstance(value, str) else value
    except ImportError:
        return []  # conf.problems reports it
    setting = "CQRS['master']['meta_function']"
    hint = "Give a function such as `def event_meta(obj, **kwargs): return {...}`."
    if isinstance(func, type):
        return [checks.Error(f"{setting} is the class {func.__qualname__}, not a function "
                             "returning the event's meta.", hint=hint, id="cqrs_outbox.E030")]
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): let it be
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    return [checks.Error(f"{setting} does not take **kwargs; it is called with obj, "
                         "instance_data, previous_data and signal_type.", hint=hint,
                         id="cqrs_outbox.E031")]


# What a service cannot run with at all. The app raises these when it is ready, so a
# process started by gunicorn, uwsgi or Celery (where no system check runs) fails at once.
FATAL_AT_START = ("cqrs_outbox.E001", "cqrs_outbox.E002", "cqrs_outbox.E016",
                  "cqrs_outbox.E024", "cqrs_outbox.E030", "cqrs_outbox.E031")


def raise_if_unusable() -> None:
    """Raise ImproperlyConfigured with the check's message if the service cannot run.

    That is: `CQRS` missing or not a dict, a master, replica or relay section that is not
    a dict, a `meta_function` that cannot be called as every commit calls it, replica
    models without `CQRS['queue']`, or a CQRS_ID used by two models.
    """
    found = [m for m in check_settings() if m.id in FATAL_AT_START]
    found += _duplicate_errors()
    if found:
        first = found[0]
        raise ImproperlyConfigured(f"{first.msg} HINT: {first.hint} ({first.id})")


def _field_names(model: Any) -> set:
    return {f.name for f in model._meta.fields}


def _names_problems(model: Any, names: Any, attr: str, need_pk: bool) -> Iterable[checks.Error]:
    if isinstance(names, str) or not isinstance(names, (list, tuple, set)):
        yield checks.Error(
            f"{attr} of {model.__name__} must be '__all__' or a list of field names.",
            hint=f"Set {attr} = '__all__' or a list such as ['id', 'name'].",
            obj=model,
            id="cqrs_outbox.E012",
        )
        return
    names = list(names)
    if len(set(names)) != len(names):
        yield checks.Error(
            f"{attr} of {model.__name__} names a field twice.",
            hint="Remove the duplicate names.",
            obj=model,
            id="cqrs_outbox.E012",
        )
    unknown = sorted(set(names) - _field_names(model))
    if unknown:
        yield checks.Error(
            f"{attr} of {model.__name__} names fields the model lacks: {', '.join(unknown)}.",
            hint="Use field names of the model: " + ", ".join(sorted(_field_names(model))) + ".",
            obj=model,
            id="cqrs_outbox.E012",
        )
    if need_pk and model._meta.pk.name not in names:
        yield checks.Error(
            f"{attr} of {model.__name__} does not include the primary key "
            f"'{model._meta.pk.name}'.",
            hint=f"Add '{model._meta.pk.name}' to {attr}: replicas find rows by it.",
            obj=model,
            id="cqrs_outbox.E013",
        )


def _cqrs_id_problems(model: Any) -> list:
    if isinstance(model.CQRS_ID, str) and model.CQRS_ID:
        return []
    return [
        checks.Error(
            f"{model.__name__} has no CQRS_ID.",
            hint="Set CQRS_ID to a string that names this model on every service, "
            "e.g. CQRS_ID = 'author'.",
            obj=model,
            id="cqrs_outbox.E010",
        )
    ]


def _serializer_problems(model: Any) -> list:
    if model.CQRS_SERIALIZER is None:
        return list(_fields_problems(model))
    found = []
    if model.CQRS_FIELDS != contract.ALL_FIELDS:
        found.append(
            checks.Error(
                f"{model.__name__} sets both CQRS_FIELDS and CQRS_SERIALIZER.",
                hint="Keep one: the serializer decides the fields when it is set.",
                obj=model,
                id="cqrs_outbox.E014",
            )
        )
    try:
        import_string(model.CQRS_SERIALIZER)
    except ImportError:
        found.append(
            checks.Error(
                f"CQRS_SERIALIZER {model.CQRS_SERIALIZER!r} of {model.__name__} cannot be "
                "imported.",
                hint="Give the dotted path of a serializer class, e.g. 'app.serializers.Author'.",
                obj=model,
                id="cqrs_outbox.E015",
            )
        )
    return found


def _fields_problems(model: Any) -> Iterable[checks.Error]:
    if model.CQRS_FIELDS == contract.ALL_FIELDS:
        return []
    return _names_problems(model, model.CQRS_FIELDS, "CQRS_FIELDS", need_pk=True)


def _tracked_problems(model: Any) -> Iterable[checks.Error]:
    tracked = model.CQRS_TRACKED_FIELDS
    if tracked is None or tracked == contract.ALL_FIELDS:
        return []
    return _names_problems(model, tracked, "CQRS_TRACKED_FIELDS", need_pk=False)


@checks.register("cqrs_outbox", checks.Tags.models)
def check_models(app_configs: Any = None, **kwargs: Any) -> list:
    """Check the CQRS attributes of master and replica models."""
    found: list = []
    for model in _models("master"):
        found += _cqrs_id_problems(model)
        found += _serializer_problems(model)
        found += list(_tracked_problems(model))
    for model in _models("replica"):
        found += _cqrs_id_problems(model)
        found += list(_mapping_problems(model))
    return found + _duplicate_errors()


def _duplicate_errors() -> list:
    found = []
    for registry in (MasterRegistry, ReplicaRegistry):
        for cqrs_id, first, second in registry.duplicates:
            found.append(
                checks.Error(
                    f"CQRS_ID {cqrs_id!r} is used by two {registry.kind} models: "
                    f"{first.__module__}.{first.__name__} and "
                    f"{second.__module__}.{second.__name__}.",
                    hint="Give each model its own CQRS_ID.",
                    obj=second,
                    id="cqrs_outbox.E011",
                )
            )
    return found


def _mapping_problems(model: Any) -> Iterable[checks.Error]:
    mapping = getattr(model, "CQRS_MAPPING", None)
    if mapping is None or not hasattr(model, "_meta"):
        return []
    if not isinstance(mapping, dict):
        return [
            checks.Error(
                f"CQRS_MAPPING of {model.__name__} must be a dict.",
                hint="Map master field names to this model's field names: {'name': 'title'}.",
                obj=model,
                id="cqrs_outbox.E017",
            )
        ]
    return _names_problems(model, list(mapping.values()), "CQRS_MAPPING", need_pk=True)
