"""Signal handlers that turn master saves and deletes into outbox rows."""

from __future__ import annotations

from typing import Any

from django.db import models, router
from django.dispatch import Signal

from cqrs_outbox import outbox, serialization, tracker, utils
from relay import contract

post_bulk_create = Signal()
"""Sent by `Model.cqrs.bulk_create()` with `instances` and `using`."""

post_update = Signal()
"""Sent by `Model.cqrs.bulk_update()` with `instances` and `using`."""

REVISION_ATTR = "_cqrs_deleted_revision"


def _produces(sender: Any, instance: models.Model) -> bool:
    return sender.CQRS_PRODUCE and instance.is_sync_instance()


def write_save(sender: Any, instance: models.Model, using: str, sync: bool = False,
               queue: str | None = None) -> int | None:
    """Write the SAVE (or SYNC) event of `instance` into the outbox; return its id."""
    if not _produces(sender, instance):
        return None
    signal_type = contract.SIGNAL_SYNC if sync else contract.SIGNAL_SAVE
    utils.register_saved(instance, using)
    data = serialization.instance_data(instance, using, fetch=not sync)
    envelope = serialization.envelope(
        instance, signal_type, data, tracker.previous_data(instance), queue
    )
    key = outbox.event_key(sender.CQRS_ID, instance.pk, signal_type, queue)
    row = outbox.build_row(envelope, data["cqrs_revision"], queue)
    return outbox.write(using, key, row)


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
    def post_save(cls, sender: Any, instance: models.Model, using: str, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields and "cqrs_revision" not in update_fields:
            return
        write_save(sender, instance, using, kwargs.get("sync", False), kwargs.get("queue"))

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
        outbox.forget(using, sender.CQRS_ID, instance.pk)
        if not _produces(sender, instance):
            return
        revision = instance.__dict__.pop(REVISION_ATTR, instance.cqrs_revision)
        data = serialization.delete_data(instance, revision)
        envelope = serialization.envelope(instance, contract.SIGNAL_DELETE, data, None)
        key = outbox.event_key(sender.CQRS_ID, instance.pk, contract.SIGNAL_DELETE)
        outbox.write(using, key, outbox.build_row(envelope, data["cqrs_revision"], None))

    @classmethod
    def post_bulk(cls, sender: Any, instances: list, using: str | None = None,
                  **kwargs: Any) -> None:
        if not sender.CQRS_PRODUCE:
            return
        alias = using or router.db_for_write(sender)
        for instance in instances:
            utils.register_saved(instance, alias)
        keyed_rows = []
        for instance in instances:
            if not instance.is_sync_instance():
                continue
            data = serialization.instance_data(instance, alias)
            envelope = serialization.envelope(
                instance, contract.SIGNAL_SAVE, data, tracker.previous_data(instance)
            )
            key = outbox.event_key(sender.CQRS_ID, instance.pk, contract.SIGNAL_SAVE)
            keyed_rows.append((key, outbox.build_row(envelope, data["cqrs_revision"], None)))
        outbox.write_many(alias, keyed_rows)
