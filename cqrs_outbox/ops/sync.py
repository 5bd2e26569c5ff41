"""Write SYNC events for chosen master rows into the outbox, a batch per transaction.

`cqrs_sync`, `cqrs_diff_sync` and the admin's "Sync selected via CQRS" action all come
through here; every event is built by `cqrs_outbox.master.events.build`, and a model's own
`cqrs_sync()` is called per row when it overrides it. Each batch reads its rows under
`SELECT ... FOR UPDATE`, so a SYNC is serialised after any write in flight on the same
row and can never carry a state older than an event already in the outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldError, ValidationError
from django.db import (
    DatabaseError,
    DataError,
    ProgrammingError,
    connections,
    models,
    router,
    transaction,
)

from cqrs_outbox.core import contract, wire
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.master import events, locking, outbox
from cqrs_outbox.ops import progress
from cqrs_outbox.registry import MasterRegistry

logger = logging.getLogger(__name__)

_START = object()


@dataclass(frozen=True)
class SyncResult:
    """How many rows got a SYNC event, how many were passed over, and which failed."""

    synced: int
    skipped: int
    failed: tuple = ()  # (pk, "ErrorType: message") per row whose sync raised

    @property
    def processed(self) -> int:
        """Return how many rows were read: synced, skipped or failed."""
        return self.synced + self.skipped + len(self.failed)

    def __add__(self, other: SyncResult) -> SyncResult:
        return SyncResult(self.synced + other.synced, self.skipped + other.skipped,
                          self.failed + other.failed)


def master_model(cqrs_id: str) -> type[models.Model]:
    """Return the master model registered as `cqrs_id`."""
    return _lookup(MasterRegistry.models, cqrs_id, "master")


def _lookup(known: dict, cqrs_id: str, kind: str) -> type[models.Model]:
    model = known.get(cqrs_id)
    if model is None:
        choices = ", ".join(sorted(known)) or "none"
        raise ConfigurationError(
            # django-cqrs's words first ("Wrong CQRS ID: x!"), for scripts that match them.
            f"Wrong CQRS ID: {cqrs_id}! It is no {kind} model (known: {choices})."
        )
    return model


def parse_filter(text: str | None) -> dict | None:
    """Decode a `--filter` option: a JSON object of queryset lookups, or None if absent."""
    if text is None:
        return None
    try:
        kwargs = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"Bad filter kwargs! The filter is not JSON ({exc}).") from exc
    if not isinstance(kwargs, dict):
        raise ConfigurationError(
            f'Bad filter kwargs! Expected a JSON object such as {{"id__in": [1, 2]}}, '
            f"got {type(kwargs).__name__}."
        )
    return kwargs


def filtered(model: type[models.Model], kwargs: dict, using: str | None = None) -> models.QuerySet:
    """Return the rows of `model` matching `kwargs`, checked against the database once."""
    qs = model._default_manager.using(using or router.db_for_write(model)).order_by()
    try:
        qs = qs.filter(**kwargs)
        qs.exists()  # some mistakes (a bad value for a column) only show when run
    except (FieldError, ValueError, TypeError, ValidationError, DataError, ProgrammingError) as exc:
        # django-cqrs's words ("Bad filter kwargs! <error>"), which scripts match.
        raise ConfigurationError(f"Bad filter kwargs! {_one_line(exc)}") from exc
    return qs


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        text = "; ".join(exc.messages)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def batches(
    qs: models.QuerySet, size: int, key: Callable[[Any], Any] = lambda row: row.pk
) -> Iterator[list]:
    """Yield the items of `qs` in primary key order, `size` at a time, each key once.

    Pages by key (`pk > last`) rather than by offset, so rows written meanwhile neither
    shift nor repeat a page. A filter across a to-many relation can repeat a row; the
    repeats are adjacent and dropped.
    """
    last = _START
    while True:
        page = qs if last is _START else qs.filter(pk__gt=last)
        items = list(page.order_by("pk")[:size])
        if not items:
            return
        last = key(items[-1])
        yield [item for i, item in enumerate(items) if i == 0 or key(item) != key(items[i - 1])]


def sync_queryset(
    qs: models.QuerySet,
    queue: str | None = None,
    batch: int = contract.DEFAULT_BATCH,
    bar: progress.Progress | None = None,
    repair: bool = False,
) -> SyncResult:
    """Write SYNC events for the rows of `qs`, to every replica or only to `queue`.

    With `repair`, each SYNC is marked as a repair: replicas take it whatever their
    row's revision or tombstone. A row whose sync fails is reported in the result and
    the others go on.
    """
    total = SyncResult(0, 0)
    with events.repairing(repair):
        for pks in batches(qs.values_list("pk", flat=True), batch, key=lambda pk: pk):
            total += sync_pks(qs.model, pks, qs.db, queue)
            if bar is not None:
                bar.advance(len(pks))
    return total


class _Poisoned(Exception):
    """A row's sync broke the batch's transaction: redo the batch without that row."""

    def __init__(self, pk: Any, error: BaseException):
        super().__init__(pk)
        self.pk, self.error = pk, error


def sync_pks(model: type[models.Model], pks: list, alias: str, queue: str | None) -> SyncResult:
    """Lock the rows `pks` and queue their SYNC events in one transaction.

    The events are written in one INSERT when the batch commits. A model that overrides
    `cqrs_sync()` gets it called per row, each in a savepoint of its own.
    """
    failed: dict = {}
    while True:
        try:
            with transaction.atomic(using=alias):
                qs = model.relate_cqrs_serialization(model._default_manager.using(alias))
                # Locks are taken in pk order, so two syncs over the same rows cannot
                # deadlock.
                rows = locking.for_update(qs, alias).filter(
                    pk__in=[pk for pk in pks if pk not in failed]
                ).order_by("pk")
                synced, skipped = _sync_rows(model, rows, alias, queue, failed)
            break
        except _Poisoned as poisoned:
            failed[poisoned.pk] = poisoned.error
    for pk, error in failed.items():
        logger.error("Sync record failed for pk=%s of %s: %s", pk, model.CQRS_ID, _why(error))
    logger.info("Queued %s SYNC events of %s to %s", synced, model.CQRS_ID, queue or "all")
    return SyncResult(synced, skipped, tuple((pk, _why(e)) for pk, e in failed.items()))


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _sync_rows(model: type[models.Model], rows: Any, alias: str, queue: str | None,
               failed: dict) -> tuple[int, int]:
    custom = model.cqrs_sync is not _default_cqrs_sync()
    synced = skipped = 0
    for row in rows:
        try:
            done = _custom_sync(row, alias, queue) if custom else _sync_one(row, alias, queue)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
            if not custom and _breaks_transaction(exc, alias):
                raise _Poisoned(row.pk, exc) from exc
            failed[row.pk] = exc
            continue
        synced, skipped = synced + done, skipped + (not done)
    return synced, skipped


def _default_cqrs_sync() -> Any:
    from cqrs_outbox.master.mixins import RawMasterMixin

    return RawMasterMixin.cqrs_sync


def _custom_sync(row: models.Model, alias: str, queue: str | None) -> bool:
    # The model's own cqrs_sync() may do anything: a savepoint keeps its failure to
    # itself, and flushing inside it makes its event's failure its own too.
    with transaction.atomic(using=alias):
        done = row.cqrs_sync(queue=queue)  # the call django-cqrs makes
        outbox.flush(alias)
    return bool(done)


def _sync_one(row: models.Model, alias: str, queue: str | None) -> bool:
    # Built now rather than at commit: the row is locked and cannot change, and a
    # failure is found while the batch can still go on without it.
    model = type(row)
    if not (model.CQRS_PRODUCE and row.is_sync_instance()):
        return False
    event = events.build(row, wire.SIGNAL_SYNC, alias, queue=queue)
    if event is None:
        return False
    outbox.enqueue(alias, outbox.event_key(model.CQRS_ID, row.pk, wire.SIGNAL_SYNC, queue),
                   event=event)
    return True


def _breaks_transaction(exc: BaseException, alias: str) -> bool:
    # A database error inside the batch leaves PostgreSQL's transaction unusable.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DatabaseError):
            return True
        seen = seen.__cause__
    return connections[alias].needs_rollback
