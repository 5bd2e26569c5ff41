"""Write SYNC events for chosen master rows into the outbox, a batch per transaction.

`cqrs_sync`, `cqrs_diff_sync` and the admin's "Sync selected via CQRS" action all come
through here. Each batch reads its rows under `SELECT ... FOR UPDATE`, so a SYNC is
serialised after any write in flight on the same row and can never carry a state older
than an event already in the outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldError, ValidationError
from django.db import DataError, ProgrammingError, models, router, transaction

from cqrs_outbox import outbox, progress, serialization, tracker
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry
from relay import contract
from relay.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 10000  # rows per transaction, as django-cqrs
_START = object()


@dataclass(frozen=True)
class SyncResult:
    """How many rows got a SYNC event, and how many were passed over."""

    synced: int
    skipped: int


def master_model(cqrs_id: str) -> type[models.Model]:
    """Return the master model registered as `cqrs_id`."""
    return _lookup(MasterRegistry.models, cqrs_id, "master")


def replica_model(cqrs_id: str) -> type[models.Model]:
    """Return the replica model registered as `cqrs_id`."""
    return _lookup(ReplicaRegistry.models, cqrs_id, "replica")


def _lookup(known: dict, cqrs_id: str, kind: str) -> type[models.Model]:
    model = known.get(cqrs_id)
    if model is None:
        choices = ", ".join(sorted(known)) or "none"
        raise ConfigurationError(
            f"Wrong CQRS ID: {cqrs_id!r} is no {kind} model (known: {choices})."
        )
    return model


def parse_filter(text: str | None) -> dict | None:
    """Decode a `--filter` option: a JSON object of queryset lookups, or None if absent."""
    if text is None:
        return None
    try:
        kwargs = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"Bad filter: not JSON ({exc}).") from exc
    if not isinstance(kwargs, dict):
        raise ConfigurationError(
            f'Bad filter: expected a JSON object such as {{"id__in": [1, 2]}}, '
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
        raise ConfigurationError(f"Bad filter: {_one_line(exc)}") from exc
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
    batch: int = DEFAULT_BATCH,
    bar: progress.Progress | None = None,
) -> SyncResult:
    """Write SYNC events for the rows of `qs`, to every replica or only to `queue`."""
    model = qs.model
    alias = qs.db
    synced = skipped = 0
    for pks in batches(qs.values_list("pk", flat=True), batch, key=lambda pk: pk):
        done = sync_pks(model, pks, alias, queue)
        synced += done
        skipped += len(pks) - done
        if bar is not None:
            bar.advance(len(pks))
    if bar is not None:
        bar.finish()
    return SyncResult(synced, skipped)


def sync_pks(model: type[models.Model], pks: list, alias: str, queue: str | None) -> int:
    """Lock the rows `pks` and write their SYNC events in one transaction; return how many."""
    with transaction.atomic(using=alias):
        qs = model.relate_cqrs_serialization(model._default_manager.using(alias))
        # Locks are taken in pk order, so two syncs over the same rows cannot deadlock.
        rows = qs.select_for_update(of=("self",)).filter(pk__in=pks).order_by("pk")
        keyed = [_keyed_event(model, row, alias, queue) for row in rows if _produces(model, row)]
        outbox.write_many(alias, keyed)
    logger.info("Wrote %s SYNC events of %s to %s", len(keyed), model.CQRS_ID, queue or "all")
    return len(keyed)


def _produces(model: type[models.Model], row: models.Model) -> bool:
    return bool(model.CQRS_PRODUCE and row.is_sync_instance())


def _keyed_event(
    model: type[models.Model], row: models.Model, alias: str, queue: str | None
) -> tuple:
    # The same serialization as a single `instance.cqrs_sync()`, batched into one INSERT.
    data = serialization.instance_data(row, alias, fetch=False)
    envelope = serialization.envelope(
        row, contract.SIGNAL_SYNC, data, tracker.previous_data(row), queue
    )
    key = outbox.event_key(model.CQRS_ID, row.pk, contract.SIGNAL_SYNC, queue)
    return key, outbox.build_row(envelope, data["cqrs_revision"], queue)
