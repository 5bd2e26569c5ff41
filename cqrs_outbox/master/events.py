"""Build every master event in one place: save, delete, bulk and SYNC all come here.

The builder asks the model for its data through `to_cqrs_dict()` (so an override applies
on every path), wraps it in the envelope django-cqrs peers read and returns the outbox
row. It runs when the transaction's events are flushed, just before COMMIT.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
from collections.abc import Iterator

from django.db import models
from django.utils import timezone

from cqrs_outbox import conf, keyring
from cqrs_outbox.core import contract, wire
from cqrs_outbox.core.errors import EventBuildError
from cqrs_outbox.master import serialization, tracker

logger = logging.getLogger(__name__)

# Set while `cqrs_sync --repair` or the admin's repair action writes its SYNC events.
_repair: contextvars.ContextVar[bool] = contextvars.ContextVar("cqrs_outbox_repair",
                                                               default=False)


@contextlib.contextmanager
def repairing(flag: bool = True) -> Iterator[None]:
    """Mark the SYNC events built inside the block as repairs (`"repair": true`)."""
    token = _repair.set(flag)
    try:
        yield
    finally:
        _repair.reset(token)


def _source(model_cls: type[models.Model]) -> str:
    if serialization.own_dict(model_cls):
        return f"{model_cls.__qualname__}.to_cqrs_dict()"
    if model_cls.CQRS_SERIALIZER:
        return f"CQRS_SERIALIZER {model_cls.CQRS_SERIALIZER}"
    return "the field serializer"


def instance_data(instance: models.Model, using: str, sync: bool) -> dict | None:
    """Return `instance_data` for a SAVE or SYNC, or None if the row is filtered out.

    Raises EventBuildError naming the model, the pk and the serializer when building
    fails for any other reason.
    """
    model_cls = type(instance)
    try:
        return instance.to_cqrs_dict(using, sync=sync)
    except model_cls.DoesNotExist:
        # relate_cqrs_serialization() filtered the row out: django-cqrs logs this line at
        # ERROR and sends nothing; alerts written for it keep matching.
        logger.error(
            "Can't produce message from master model '%s': The instance doesn't exist "
            "(pk=%s); no event written", model_cls.__name__, instance.pk,
        )
        return None
    except Exception as exc:
        raise EventBuildError(
            f"Could not build the CQRS event of {model_cls.__name__} pk={instance.pk} "
            f"with {_source(model_cls)}: {type(exc).__name__}: {exc}"
        ) from exc


def build(
    instance: models.Model,
    signal_type: str,
    using: str,
    *,
    queue: str | None = None,
    data: dict | None = None,
    settings: conf.Settings | None = None,
) -> contract.NewEvent | None:
    """Return the outbox row of one event of `instance`, or None if there is none to send.

    `data` is given for a DELETE (built while the row still existed); SAVE and SYNC
    serialise the instance as it is now.
    """
    if data is None:
        data = instance_data(instance, using, sync=signal_type == wire.SIGNAL_SYNC)
        if data is None:
            return None
    return _event(instance, signal_type, data, queue, settings or conf.get())


def _event(instance: models.Model, signal_type: str, data: dict, queue: str | None,
           settings: conf.Settings) -> contract.NewEvent:
    previous = None if signal_type == wire.SIGNAL_DELETE else tracker.previous_data(instance)
    body = serialization.body(instance, signal_type, data, previous, queue, settings)
    cqrs_id = body["cqrs_id"]
    pk = str(body["instance_pk"])
    correlation = body["correlation_id"]
    signed = bool(settings.master.signing_key)
    payload = _payload(body, signal_type, signed)
    return contract.NewEvent(
        cqrs_id=cqrs_id,
        instance_pk=pk,
        signal_type=signal_type,
        revision=data[wire.REVISION_KEY],
        partition=contract.partition_for(cqrs_id, pk),
        routing_key=contract.routing_key(cqrs_id, queue),
        payload=payload,
        correlation_id=None if correlation is None else str(correlation),
        # Signed here, so the relay (standalone or not) publishes it without any secret.
        signature=keyring.signer(settings).header(payload.encode()) if signed else None,
    )


def _payload(body: dict, signal_type: str, signed: bool) -> str:
    # Keys of our own go after django-cqrs's, which ignores them. A signed body says
    # when it was signed (a SYNC: now, so a resend of an old row is fresh), inside the
    # signed bytes, for replicas to refuse old replays.
    if signal_type == wire.SIGNAL_SYNC and _repair.get():
        body[wire.REPAIR_KEY] = True
    if signed:
        body[wire.SIGNED_AT_KEY] = wire.format_expires(timezone.now())
    return wire.dumps(body)


def delete_event(instance: models.Model, revision: int,
                 deleted_at: datetime.datetime | None = None) -> contract.NewEvent:
    """Return the DELETE event of `instance`, whose row stood at `revision` (deleted at
    `deleted_at`, default now)."""
    data = serialization.delete_data(instance, revision, deleted_at)
    return _event(instance, wire.SIGNAL_DELETE, data, None, conf.get())
