"""Turn the changes the capture triggers recorded into events (capture mode 'database').

`process()` takes a batch of capture records under `SELECT ... FOR UPDATE SKIP LOCKED`,
locks the rows they name and, in one transaction:

- a row that exists gets its `cqrs_revision` raised by one (and `cqrs_updated` set),
  and a SAVE event serialised by the model's own serializer from the row as it is now;
- a row that is gone gets a DELETE event at the revision it had when it was deleted;
- a row deleted outside the ORM that exists again gets both, the DELETE first.

The row lock orders this with every other writer of the row: the revision raised here is
above any the ORM wrote, and the state sent is the newest, so a replica never keeps an
older state under a newer revision. The events go through the same commit-time flush as
`save()`, which is also what clears the records on MySQL/MariaDB and SQLite.

`cqrs_relay` and the Celery drain task run this before each drain; `cqrs_capture` runs
it alone, for deployments whose only relay is `python -m relay`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

from django.db import connections, models, transaction
from django.db.models import F
from django.utils import timezone

from cqrs_outbox.core import wire
from cqrs_outbox.master import capture, events, outbox, signals
from cqrs_outbox.models import CapturedChange
from cqrs_outbox.registry import MasterRegistry

logger = logging.getLogger(__name__)

BATCH = 1000  # capture records per transaction
WARN_INTERVAL = 60.0  # seconds between two warnings about the same table
_warned: dict[str, float] = {}


def models_in_database_mode() -> list[type[models.Model]]:
    """Return the master models whose changes the capture triggers watch."""
    return [m for m in MasterRegistry.models.values()
            if not m._meta.abstract and m.CQRS_PRODUCE and capture.mode(m) == capture.DATABASE]


def enabled() -> bool:
    """Tell whether any master model is in capture mode 'database'."""
    return bool(models_in_database_mode())


def process(using: str = "default", limit: int = BATCH, observer: Any = None) -> int:
    """Turn up to `limit` capture records into events; return how many were taken."""
    if not enabled():
        return 0
    with transaction.atomic(using=using):
        records = list(
            CapturedChange.objects.using(using)
            .select_for_update(**_skip_locked(using))
            .order_by("id")[:limit]
        )
        if not records:
            return 0
        by_id: dict[str, list[CapturedChange]] = defaultdict(list)
        for record in records:
            by_id[record.cqrs_id].append(record)
        for cqrs_id, found in by_id.items():
            model_cls = MasterRegistry.get_model_by_cqrs_id(cqrs_id)
            if model_cls is None:
                logger.error("capture records of unknown CQRS_ID %r (table %s) dropped: no "
                             "master model has that id", cqrs_id, found[0].table_name)
                continue
            _events(model_cls, found, using)
            _report(using, model_cls, found, observer)
        CapturedChange.objects.using(using).filter(id__in=[r.id for r in records]).delete()
    return len(records)


def waiting(using: str = "default") -> int:
    """Return how many capture records wait to become events."""
    return CapturedChange.objects.using(using).count()


def _skip_locked(using: str) -> dict:
    return {"skip_locked": True} if connections[using].features.has_select_for_update_skip_locked \
        else {}


def _events(model_cls: type[models.Model], records: list[CapturedChange], using: str) -> None:
    pk_field = model_cls._meta.pk
    deleted: dict[str, CapturedChange] = {}  # pk text -> its delete outside the ORM
    order: dict[str, Any] = {}  # pk text -> pk value, in the order first recorded
    for record in records:
        order.setdefault(record.instance_pk, pk_field.to_python(record.instance_pk))
        if record.kind == "D" and record.revision is not None:
            deleted[record.instance_pk] = record
    manager = model_cls._base_manager.using(using)
    rows = {str(row.pk): row for row in
            manager.select_for_update().filter(pk__in=list(order.values()))}
    now = timezone.now()
    # Rows with no delete recorded (nearly all) are raised in one statement; they are
    # locked above, so the revision read is the one raised.
    plain = [row for text, row in rows.items() if text not in deleted]
    if plain:
        manager.filter(pk__in=[row.pk for row in plain]).update(
            cqrs_revision=F("cqrs_revision") + 1, cqrs_updated=now)
    for row in plain:
        row.cqrs_revision, row.cqrs_updated = row.cqrs_revision + 1, now
    for text, value in order.items():
        row = rows.get(text)
        gone = deleted.get(text)
        if gone is not None:
            _queue_delete(model_cls, value, gone, using)
            if row is not None:
                # Created again: above the DELETE just queued too (which carries its
                # row's revision plus one), so replicas take the new life's state.
                revision = max(row.cqrs_revision + 1, gone.revision + 2)
                manager.filter(pk=row.pk).update(cqrs_revision=revision, cqrs_updated=now)
                row.cqrs_revision, row.cqrs_updated = revision, now
        if row is not None:
            signals.queue_save(model_cls, row, using)


def _queue_delete(model_cls: type[models.Model], pk: Any, record: CapturedChange,
                  using: str) -> None:
    # Sent with the time of the delete itself, which the replica's rules compare with
    # the times of the row's other lives.
    instance = model_cls(pk=pk)
    instance.cqrs_revision = record.revision
    if not instance.is_sync_instance():
        return
    event = events.delete_event(instance, record.revision, record.created_at)
    outbox.enqueue(using, outbox.event_key(model_cls.CQRS_ID, pk, wire.SIGNAL_DELETE),
                   event=event)


def _report(using: str, model_cls: type[models.Model], records: list, observer: Any) -> None:
    table = model_cls._meta.db_table
    if observer is not None:
        observer.captured(model_cls.CQRS_ID, len(records))
    now = time.monotonic()
    last = _warned.get(table)
    if last is None or now - last >= WARN_INTERVAL:
        _warned[table] = now
        logger.warning(
            "table %s: %d change(s) made outside the ORM (raw SQL, a migration, another "
            "service) reached the outbox through the capture triggers; CQRS_ID %s",
            table, len(records), model_cls.CQRS_ID)

