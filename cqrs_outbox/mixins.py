"""Model mixins with django-cqrs's names: masters write events, replicas apply them."""

from __future__ import annotations

from typing import Any

from django.db import models, router, transaction
from django.db.models import F

from cqrs_outbox import conf, locking, outbox, signals, tracker
from cqrs_outbox.managers import MasterManager, ReplicaManager
from cqrs_outbox.metas import MasterMeta, ReplicaMeta
from cqrs_outbox.replica import data as replica_data
from relay import contract

ALL_BASIC_FIELDS = "__all__"


class RawMasterMixin(models.Model):
    """Master behaviour without the registering metaclass; use `MasterMeta.register`."""

    CQRS_ID: str | None = None
    CQRS_PRODUCE = True
    CQRS_FIELDS: Any = ALL_BASIC_FIELDS
    CQRS_SERIALIZER: str | None = None
    CQRS_TRACKED_FIELDS: Any = None

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
        outbox.count_save(using, self)
        with transaction.atomic(using=using, savepoint=False):
            self._prepare_cqrs_save(using, kwargs)
            super().save(*args, **kwargs)

    def _prepare_cqrs_save(self, using: str, kwargs: dict) -> None:
        update_fields = kwargs.get("update_fields")
        auto = kwargs.pop("update_cqrs_fields", conf.get().master.auto_update_fields)
        key = outbox.event_key(self.CQRS_ID, self.pk, contract.SIGNAL_SAVE)
        first = self._state.adding or not outbox.queued(using, key)
        bump = not self._state.adding
        if update_fields is not None:
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
            key = outbox.event_key(self.CQRS_ID, self.pk, contract.SIGNAL_SAVE)
            outbox.seal(self._cqrs_alias(), key)

    def to_cqrs_dict(self, using: str | None = None, sync: bool = False) -> dict:
        """Return `instance_data` as the next event would carry it."""
        from cqrs_outbox import serialization

        return serialization.instance_data(self, using or self._cqrs_alias(), fetch=not sync)

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

    def get_cqrs_meta(self, **kwargs: Any) -> dict:
        """Return metadata for the event; calls the `meta_function` setting by default."""
        func = conf.get().master.meta_function
        return func(obj=self, **kwargs) if func else {}

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


class RawReplicaMixin:
    """Replica behaviour for models that take the data themselves (no database rows)."""

    CQRS_ID: str | None = None
    CQRS_NO_DB_OPERATIONS = True
    CQRS_META = False
    CQRS_ONLY_DIRECT_SYNCS = False

    @classmethod
    def cqrs_save(cls, master_data: dict, **kwargs: Any) -> Any:
        """Take a SAVE or SYNC; override it."""
        raise NotImplementedError(f"{cls.__name__}.cqrs_save() must be implemented")

    @classmethod
    def cqrs_delete(cls, master_data: dict, **kwargs: Any) -> Any:
        """Take a DELETE; override it."""
        raise NotImplementedError(f"{cls.__name__}.cqrs_delete() must be implemented")

    @staticmethod
    def should_retry_cqrs(current_retry: int, exception: BaseException | None = None) -> bool:
        """Return True while a failed message should be retried."""
        max_retries = conf.get().replica.max_retries
        return max_retries is None or current_retry < max_retries

    @staticmethod
    def get_cqrs_retry_delay(current_retry: int) -> int:
        """Return the seconds to wait before the next retry."""
        return conf.get().replica.retry_delay


class ReplicaMixin(RawReplicaMixin, models.Model, metaclass=ReplicaMeta):
    """A read-only copy of a master model, kept up to date by `cqrs_consume`."""

    CQRS_ID: str | None = None
    CQRS_MAPPING: dict | None = None
    CQRS_CUSTOM_SERIALIZATION = False
    CQRS_SELECT_FOR_UPDATE = False
    CQRS_NO_DB_OPERATIONS = False
    CQRS_META = False
    CQRS_ONLY_DIRECT_SYNCS = False

    objects = models.Manager()
    cqrs = ReplicaManager()

    cqrs_revision = models.IntegerField()
    cqrs_updated = models.DateTimeField()

    class Meta:
        abstract = True

    @classmethod
    def cqrs_save(cls, master_data: dict, previous_data: dict | None = None,
                  sync: bool = False, meta: dict | None = None) -> Any:
        """Create or update the row from master data, if newer; return the row.

        Override `cqrs_create` and `cqrs_update` rather than this method, or the revision
        checks are yours to make.
        """
        if cls.CQRS_NO_DB_OPERATIONS:
            return super().cqrs_save(master_data, previous_data=previous_data, sync=sync,
                                     meta=meta)
        return cls.cqrs.save_instance(master_data, previous_data, sync, meta)

    @classmethod
    def cqrs_create(cls, sync: bool, mapped_data: dict, previous_data: dict | None = None,
                    meta: dict | None = None) -> Any:
        """Create the row from mapped master data; override it for custom serialization."""
        return cls._default_manager.create(**replica_data.attname_kwargs(cls, mapped_data))

    def cqrs_update(self, sync: bool, mapped_data: dict, previous_data: dict | None = None,
                    meta: dict | None = None) -> Any:
        """Update the row from mapped master data; override it for custom serialization."""
        for name, value in replica_data.attname_kwargs(type(self), mapped_data).items():
            setattr(self, name, value)
        self.save()
        return self

    @classmethod
    def cqrs_delete(cls, master_data: dict, meta: dict | None = None) -> Any:
        """Delete the row if the DELETE is newer, leaving a tombstone; return True."""
        if cls.CQRS_NO_DB_OPERATIONS:
            return super().cqrs_delete(master_data, meta=meta)
        return cls.cqrs.delete_instance(master_data)
