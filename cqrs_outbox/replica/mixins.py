"""The replica model mixins, with django-cqrs's names: their rows are kept by the consumer."""

from __future__ import annotations

from typing import Any

from django.db import models

from cqrs_outbox import conf
from cqrs_outbox.replica import handlers, mapping
from cqrs_outbox.replica.managers import ReplicaManager
from cqrs_outbox.replica.metas import ReplicaMeta


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
                  sync: bool = False, meta: Any = None) -> Any:
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
                    meta: Any = None) -> Any:
        """Create the row from mapped master data; override it for custom serialization."""
        return cls._default_manager.create(**mapping.attname_kwargs(cls, mapped_data))

    def cqrs_update(self, sync: bool, mapped_data: dict, previous_data: dict | None = None,
                    meta: Any = None) -> Any:
        """Update the row from mapped master data; override it for custom serialization."""
        for name, value in mapping.attname_kwargs(type(self), mapped_data).items():
            setattr(self, name, value)
        self.save()
        return self

    @classmethod
    def cqrs_delete(cls, master_data: dict, meta: Any = None) -> Any:
        """Delete the row if the DELETE is newer, leaving a tombstone; return True."""
        if cls.CQRS_NO_DB_OPERATIONS:
            return super().cqrs_delete(master_data, meta=meta)
        return cls.cqrs.delete_instance(master_data)


handlers.OWN_HOOKS.update(
    (name, ReplicaMixin.__dict__[name])
    for name in ("cqrs_save", "cqrs_create", "cqrs_update", "cqrs_delete")
)
