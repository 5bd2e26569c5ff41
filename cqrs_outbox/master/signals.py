"""Signal handlers that queue master saves, deletes and bulk writes for the outbox.

The events themselves are built and written when the transaction commits
(`cqrs_outbox.master.outbox`), each by `cqrs_outbox.master.events.build`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

from django.db import models, router, transaction
from django.dispatch import Signal

from cqrs_outbox.core import wire
from cqrs_outbox.master import events, outbox, relate

logger = logging.getLogger(__name__)

post_bulk_create = Signal()
"""Sent by `Model.cqrs.bulk_create()` with `instances` and `using`."""

post_update = Signal()
"""Sent by `Model.cqrs.bulk_update()` with `instances` and `using`."""

# The instances of a bulk create whose events are queued already (the capturing
# queryset's bulk_create queued them row by row): `post_bulk` leaves that very list alone
# while the signal is sent for it, so each row is queued once.
_queued_already: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "cqrs_bulk_queued_already", default=None)


@contextlib.contextmanager
def queued_already(instances: list | None) -> Iterator[None]:
    """Mark `instances` (None: nothing) as queued while the bulk signal is sent for them."""
    token = _queued_already.set(instances)
    try:
        yield
    finally:
        _queued_already.reset(token)

REVISION_ATTR = "_cqrs_deleted_revision"


def _produces(sender: Any, instance: models.Model) -> bool:
    return sender.CQRS_PRODUCE and instance.is_sync_instance()


def queue_save(sender: Any, instance: models.Model, using: str, sync: bool = False,
               queue: str | None = None) -> bool:
    """Queue the SAVE (or SYNC) event of `instance` for this transaction's commit."""
    if not _produces(sender, instance):
        return False
    signal_type = wire.SIGNAL_SYNC if sync else wire.SIGNAL_SAVE
    relate.register_saved(instance, using)
    key = outbox.event_key(sender.CQRS_ID, instance.pk, signal_type, queue)
    outbox.enqueue(using, key, instance)
    return True


class MasterSignals:
    """Connects the handlers of one master model."""

    @classmethod
    def register_model(cls, model_cls: type[models.Model]) -> None:
        """Connect the save, delete and bulk handlers for `model_cls`."""
        models.signals.post_save.connect(cls.post_save, sender=model_cls)
        models.signals.pre_delete.connect(cls.pre_delete, sender=model_cls)
        models.signals.post_delete.connect(cls.post_delete, sender=model_cls)
        post_bulk_create.connect(cls.post_bulk, sender=model_cls)
        post_update.connect(cls.post_bulk, sender=model_cls)

    @classmethod
    def post_save(cls, sender: Any, instance: models.Model, using: str | None = None,
                  **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields and "cqrs_revision" not in update_fields:
            return
        alias = using or router.db_for_write(sender, instance=instance)
        queue_save(sender, instance, alias, kwargs.get("sync", False), kwargs.get("queue"))

    @classmethod
    def pre_delete(cls, sender: Any, instance: models.Model, using: str, **kwargs: Any) -> None:
        # The revision in memory may be stale; read it under the row lock the delete takes
        # anyway, so the DELETE event always outranks the last SAVE.
        revision = (
            sender._default_manager.using(using)
            .select_for_update()
            .filter(pk=instance.pk)
            .values_list("cqrs_revision", flat=True)
            .first()
        )
        instance.__dict__[REVISION_ATTR] = instance.cqrs_revision if revision is None else revision

    @classmethod
    def post_delete(cls, sender: Any, instance: models.Model, using: str, **kwargs: Any) -> None:
        # A row deleted in the transaction that saved it gets only its DELETE event.
        if outbox.drop(using, sender.CQRS_ID, instance.pk, (wire.SIGNAL_SAVE, wire.SIGNAL_SYNC)):
            # django-cqrs serialises the save at commit, finds the row gone and says so.
            logger.error("Can't produce message from master model '%s': The instance doesn't "
                         "exist (pk=%s); it was deleted in the same transaction, so only its "
                         "DELETE event is written", sender.__name__, instance.pk)
        revision = instance.__dict__.pop(REVISION_ATTR, instance.cqrs_revision)
        if not _produces(sender, instance):
            return
        # Built now: after the delete, the instance loses its pk and its related rows.
        event = events.delete_event(instance, revision)
        key = outbox.event_key(sender.CQRS_ID, instance.pk, wire.SIGNAL_DELETE)
        outbox.enqueue(using, key, event=event)

    @classmethod
    def post_bulk(cls, sender: Any, instances: list, using: str | None = None,
                  **kwargs: Any) -> None:
        if not sender.CQRS_PRODUCE or instances is _queued_already.get():
            return
        alias = using or router.db_for_write(sender)
        with transaction.atomic(using=alias, savepoint=False):
            for instance in instances:
                queue_save(sender, instance, alias)
