"""The master model mixins, with django-cqrs's names: their changes become outbox events."""

from __future__ import annotations

from typing import Any

from django.db import connections, models, router, transaction
from django.db.models import F
from django.db.models.expressions import Combinable

from cqrs_outbox import conf
from cqrs_outbox.core import contract, wire
from cqrs_outbox.master import locking, onetrip, outbox, serialization, signals, tracker
from cqrs_outbox.master.managers import MasterManager
from cqrs_outbox.master.metas import MasterMeta

ALL_BASIC_FIELDS = contract.ALL_FIELDS  # django-cqrs's name
_UNSET = object()


class RawMasterMixin(models.Model):
    """Master behaviour without the registering metaclass; use `MasterMeta.register`."""

    CQRS_ID: str | None = None
    CQRS_PRODUCE = True
    CQRS_FIELDS: Any = ALL_BASIC_FIELDS
    CQRS_SERIALIZER: str | None = None
    CQRS_TRACKED_FIELDS: Any = None
    # 'orm', 'database' or 'off'; None follows CQRS['master']['capture']
    CQRS_CAPTURE: str | None = None

    objects = models.Manager()
    cqrs = MasterManager()

    cqrs_revision = models.IntegerField(
        default=0, help_text="Incremented once per transaction that changes the row."
    )
    cqrs_updated = models.DateTimeField(
        auto_now=True, help_text="When the row last changed; sent with every event."
    )

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save the row and queue its event, written just before the transaction commits."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        conn = connections[using]
        outbox.count_save(using, self, conn)
        if not conn.in_atomic_block:
            with onetrip.transaction_for(using):
                self._save_queueing(using, args, kwargs)
            return
        # Inside the caller's transaction. An error marks it for rollback, as a nested
        # atomic(savepoint=False) would (a row saved without its queued event must not
        # commit), without that block's cost on every save.
        try:
            self._save_queueing(using, args, kwargs)
        except BaseException:
            conn.needs_rollback = True
            raise

    def _save_queueing(self, using: str, args: tuple, kwargs: dict) -> None:
        self._prepare_cqrs_save(using, kwargs)
        try:
            super().save(*args, **kwargs)
        except ValueError:
            # The row was deleted after this instance was read: Django's UPDATE found
            # nothing and it inserts instead, which cannot take the F() revision. As
            # in plain Django the row comes back, as a new life at revision 0.
            if not isinstance(self.cqrs_revision, Combinable) or kwargs.get(
                    "update_fields") is not None:
                raise
            # The ValueError came before any SQL ran, so the transaction is intact.
            transaction.set_rollback(False, using=using)
            self.cqrs_revision = 0
            super().save(*args, **{**kwargs, "force_insert": True})

    def _prepare_cqrs_save(self, using: str, kwargs: dict) -> None:
        update_fields = kwargs.get("update_fields")
        auto = kwargs.pop("update_cqrs_fields", _UNSET)
        adding = self._state.adding
        first = adding or not outbox.queued(
            using, outbox.event_key(self.CQRS_ID, self.pk, wire.SIGNAL_SAVE))
        bump = not adding
        if update_fields is not None:
            if auto is _UNSET:  # the setting is read only where it decides something
                auto = conf.get().master.auto_update_fields
            bump = bump and auto
            if auto:
                kwargs["update_fields"] = set(update_fields) | {"cqrs_revision", "cqrs_updated"}
        if bump:
            # A later save in the same transaction keeps the revision the first one set;
            # F() rather than the value in memory, which another object may have left
            # stale. Read back when the event is built.
            self.cqrs_revision = F("cqrs_revision") + 1 if first else F("cqrs_revision")
        tracker.capture(self, first_in_transaction=first)

    def _cqrs_alias(self) -> str:
        return self._state.db or router.db_for_write(type(self), instance=self)

    @property
    def cqrs_saves_count(self) -> int:
        """How many times this instance has been saved in the current transaction."""
        return outbox.saves_count(self._cqrs_alias(), self)

    @property
    def is_initial_cqrs_save(self) -> bool:
        """True until the instance's second save in the current transaction."""
        return self.cqrs_saves_count < 2

    def reset_cqrs_saves_count(self) -> None:
        """Start counting saves afresh; the next save in this transaction gets an event
        (and a revision) of its own, as in django-cqrs."""
        self.__dict__.pop(outbox.SAVES_ATTR, None)
        if self.pk is not None:
            key = outbox.event_key(self.CQRS_ID, self.pk, wire.SIGNAL_SAVE)
            outbox.seal(self._cqrs_alias(), key)

    # The default serializer lives with the serialization, so that the event builder can
    # tell a model's own to_cqrs_dict() from this one without importing the mixin.
    to_cqrs_dict = serialization.to_cqrs_dict

    def get_tracked_fields_data(self) -> dict | None:
        """Return the previous values of the tracked fields that changed."""
        return tracker.previous_data(self)

    def cqrs_sync(self, using: str | None = None, queue: str | None = None) -> bool:
        """Queue a SYNC event of the row, to every replica or to `queue`.

        The row is read under `SELECT ... FOR UPDATE`, so the SYNC cannot overtake a newer
        revision being written by another transaction; its event is built and written at
        commit. Returns False if the row is gone.
        """
        if self._state.adding:
            return False
        model_cls = type(self)
        alias = using or self._cqrs_alias()
        with transaction.atomic(using=alias, savepoint=False):
            qs = model_cls.relate_cqrs_serialization(model_cls._default_manager.using(alias))
            fresh = locking.for_update(qs, alias).filter(pk=self.pk).first()
            if fresh is None:
                return False
            signals.queue_save(model_cls, fresh, alias, sync=True, queue=queue)
        return True

    def is_sync_instance(self) -> bool:
        """Return False to keep this instance's changes from being published."""
        return True

    # With the serializer, so that the event builder can tell a model's own
    # get_cqrs_meta() from this one and read the setting it already holds.
    get_cqrs_meta = serialization.get_cqrs_meta

    @classmethod
    def relate_cqrs_serialization(cls, queryset: models.QuerySet) -> models.QuerySet:
        """Return `queryset` prepared for CQRS_SERIALIZER (select_related and so on)."""
        return queryset

    def get_custom_cqrs_delete_data(self) -> Any:
        """Return extra data sent as `custom` in the DELETE event."""
        return None

    @classmethod
    def call_post_bulk_create(cls, instances: list, using: str | None = None) -> None:
        """Write SAVE events for instances created in bulk."""
        signals.post_bulk_create.send(cls, instances=instances, using=using)

    @classmethod
    def call_post_update(cls, instances: list, using: str | None = None) -> None:
        """Write SAVE events for instances updated in bulk."""
        signals.post_update.send(cls, instances=instances, using=using)


class MasterMixin(RawMasterMixin, metaclass=MasterMeta):
    """A model whose changes are published to its replicas through the outbox."""

    class Meta:
        abstract = True
