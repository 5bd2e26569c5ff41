"""The `cqrs` manager of replica models."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, models, router, transaction

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.replica import handlers, mapping, queries, revlog, rules, sentences

logger = logging.getLogger(__name__)

# What a refused write raises: the database's refusal, a failed validation, and the
# ValueError / TypeError Django raises for a value of the wrong type (as in `id="x"`).
REFUSALS = (DatabaseError, ValidationError, ValueError, TypeError)

# Set while the consumer hands a repair SYNC to a model's own handlers: the manager then
# applies it whatever the row's revision, as the consumer decided.
_repairing: contextvars.ContextVar[bool] = contextvars.ContextVar("cqrs_outbox_repairing",
                                                                  default=False)


@contextlib.contextmanager
def repairing(flag: bool = True) -> Iterator[None]:
    """Make the manager apply the SAVE or SYNC handed to it inside the block as a repair."""
    token = _repairing.set(flag)
    try:
        yield
    finally:
        _repairing.reset(token)


class ReplicaManager(models.Manager):
    """The replica's `cqrs` manager: create, update or delete a row from master mapping.

    The same methods as django-cqrs's manager, applying the same revision rules as the
    consumer (`cqrs_outbox.replica.rules`). As in django-cqrs, data that cannot apply
    and writes the database refuses are logged at ERROR and give None (False for a
    delete) instead of an exception; the write runs in a savepoint, so the caller's
    transaction goes on. The consumer learns the reason through `handlers.refuse()`.
    """

    def _alias(self) -> str:
        return self._db or router.db_for_write(self.model)

    def save_instance(self, master_data: dict, previous_data: dict | None = None,
                      sync: bool = False, meta: Any = None) -> Any:
        """Create or update the row from master data; return it, or None if it cannot apply."""
        signal_type = wire.SIGNAL_SYNC if sync else wire.SIGNAL_SAVE
        try:
            change = mapping.prepare(self.model, signal_type, master_data)
            previous = mapping.map_previous_data(self.model, previous_data)
        except BadMessage as exc:
            handlers.refuse(logger, refusal(self.model, signal_type, master_data, exc), exc)
            return None
        alias = self._alias()
        qs = self.model._default_manager.using(alias).filter(pk=change.pk).order_by()
        if self.model.CQRS_SELECT_FOR_UPDATE:
            qs = qs.select_for_update()
        instance = qs.first()
        if instance is not None:
            return self.update_instance(instance, change.mapped, previous, sync, meta)
        tombstone, deleted = queries.tombstone(alias, self.model.CQRS_ID, change.key)
        state = rules.State(None, tombstone, None, deleted)
        verdict = rules.decide(signal_type, change.revision, state, change.updated,
                               _repairing.get())
        if verdict != rules.APPLY:
            logger.debug("Ignored %s %s:%s r%s: deleted at r%s", signal_type,
                         self.model.CQRS_ID, one_line(change.key), change.revision, tombstone)
            return None
        return self.create_instance(change.mapped, previous, sync, meta)

    def create_instance(self, mapped_data: dict, previous_data: dict | None = None,
                        sync: bool = False, meta: Any = None) -> Any:
        """Create the row through the model's `cqrs_create`; None if the database refuses."""
        kwargs: dict = {"previous_data": previous_data}
        if self.model.CQRS_META:
            kwargs["meta"] = meta
        try:
            with transaction.atomic(using=self._alias()):
                return self.model.cqrs_create(sync, mapped_data, **kwargs)
        except REFUSALS as exc:
            said = sentences.create_error(mapped_data.get(self.model._meta.pk.name),
                                          self.model.CQRS_ID)
            handlers.refuse(logger, sentences.line(said, _error_text(exc)), exc)
            return None

    def update_instance(self, instance: models.Model, mapped_data: dict,
                        previous_data: dict | None = None, sync: bool = False,
                        meta: Any = None) -> Any:
        """Update the row through its `cqrs_update` if the data is newer; return the row.

        An older or equal revision is logged as django-cqrs logs it and leaves the row;
        a write the database refuses is logged and gives None.
        """
        signal_type = wire.SIGNAL_SYNC if sync else wire.SIGNAL_SAVE
        revision = mapped_data["cqrs_revision"]
        state = self._state(instance)
        applies = rules.decide(signal_type, revision, state, mapping.updated_at(mapped_data),
                               _repairing.get()) == rules.APPLY
        if not handlers.consuming():  # the consumer logs these per batch itself
            note = revlog.note_for(signal_type, revision, instance.cqrs_revision, applies)
            revlog.log(logger, note, self.model.CQRS_ID, instance.pk, revision,
                       instance.cqrs_revision)
        if not applies:
            return instance
        kwargs: dict = {"previous_data": previous_data}
        if self.model.CQRS_META:
            kwargs["meta"] = meta
        try:
            with transaction.atomic(using=self._alias()):
                return instance.cqrs_update(sync, mapped_data, **kwargs)
        except REFUSALS as exc:
            said = sentences.update_error(instance.pk, revision, self.model.CQRS_ID)
            handlers.refuse(logger, sentences.line(said, _error_text(exc)), exc)
            return None

    def delete_instance(self, master_data: dict) -> bool:
        """Delete the row if the DELETE is newer, and leave a tombstone.

        Return True, also when nothing was deleted; False when the data cannot apply or
        the database refuses, as django-cqrs does.
        """
        try:
            change = mapping.prepare(self.model, wire.SIGNAL_DELETE, master_data)
        except BadMessage as exc:
            handlers.refuse(logger, refusal(self.model, wire.SIGNAL_DELETE, master_data, exc),
                            exc)
            return False
        try:
            with transaction.atomic(using=self._alias()):
                self._delete(change)
        except DatabaseError as exc:
            said = sentences.delete_error(change.pk, self.model.CQRS_ID)
            handlers.refuse(logger, sentences.line(said, _error_text(exc)), exc)
            return False
        return True

    def _state(self, instance: models.Model) -> rules.State:
        tombstone, deleted = queries.tombstone(self._alias(), self.model.CQRS_ID,
                                               str(instance.pk))
        return rules.State(instance.cqrs_revision, tombstone,
                           queries.aware(instance.cqrs_updated), deleted)

    def _delete(self, change: mapping.Change) -> None:
        alias = self._alias()
        rows = self.model._default_manager.using(alias).filter(pk=change.pk)
        row, updated = rows.order_by().values_list("cqrs_revision", "cqrs_updated").first() \
            or (None, None)
        tombstone, deleted = queries.tombstone(alias, self.model.CQRS_ID, change.key)
        state = rules.State(row, tombstone, queries.aware(updated), deleted)
        stone = {change.key: (change.revision, change.updated)}
        if rules.decide(wire.SIGNAL_DELETE, change.revision, state, change.updated) \
                != rules.APPLY:
            logger.debug("Ignored DELETE %s:%s r%s (row r%s, tombstone r%s)",
                         self.model.CQRS_ID, one_line(change.key), change.revision, row,
                         tombstone)
            marked = rules.after_refusal(wire.SIGNAL_DELETE, change.revision, state,
                                         change.updated)
            if marked != state:
                queries.save_tombstones(alias, self.model.CQRS_ID, stone)
            return
        rows.delete()
        queries.save_tombstones(alias, self.model.CQRS_ID, stone)


handlers.OWN_METHODS.update(
    (name, ReplicaManager.__dict__[name])
    for name in ("save_instance", "create_instance", "update_instance", "delete_instance")
)


def refusal(model: type[models.Model], signal_type: str, data: dict,
            error: BaseException) -> str:
    """Return the line for event data `model` cannot take: django-cqrs's sentence for the
    case, then why.

    Data that lacks what an event needs gets django-cqrs's sentence for what is missing;
    a value that cannot be written gets its create, update or delete error, as
    django-cqrs would fail on it when writing. A primary key that is no value of its
    field makes django-cqrs's row lookup raise: its consumer calls that a service
    exception.
    """
    said = mapping.django_cqrs_sentence(model, signal_type, data)
    return sentences.line(said or _write_said(model, signal_type, data), _error_text(error))


def _write_said(model: type[models.Model], signal_type: str, data: dict) -> str:
    if signal_type == wire.SIGNAL_DELETE:
        pk = data[wire.DELETE_PK_KEY]
    else:
        pk = mapping.map_save_data(model, data)[model._meta.pk.name]
    if not _is_pk(model, pk):
        return sentences.SERVICE_EXCEPTION
    if signal_type == wire.SIGNAL_DELETE:
        return sentences.delete_error(pk, model.CQRS_ID)
    if _exists(model, pk):
        return sentences.update_error(pk, data[wire.REVISION_KEY], model.CQRS_ID)
    return sentences.create_error(pk, model.CQRS_ID)


def _is_pk(model: type[models.Model], pk: Any) -> bool:
    try:
        model._meta.pk.to_python(pk)
    except (ValidationError, TypeError, ValueError):
        return False
    return True


def _exists(model: type[models.Model], pk: Any) -> bool:
    alias = router.db_for_write(model)
    try:
        with transaction.atomic(using=alias):  # a pk the column cannot hold may be refused
            return model._default_manager.using(alias).filter(pk=pk).exists()
    except (*REFUSALS, OverflowError):  # SQLite's driver cannot even send a huge integer
        return False


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)
