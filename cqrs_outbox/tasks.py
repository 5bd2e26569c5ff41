"""Celery tasks: drain the outbox for a bounded time, purge old events; beat schedules.

    from cqrs_outbox import tasks
    tasks.schedule_drain(every=60)   # once, e.g. in a data migration or a shell

creates a django-celery-beat periodic task that runs `cqrs_outbox.drain_outbox` every
minute for most of that minute. Runs that overlap (a slow worker, two beats) share the
partitions through leases, so no event is published twice by them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from celery import shared_task

from cqrs_outbox import conf, drain, outbox_db
from cqrs_outbox.core import pika_errors
from relay import db as relay_db
from relay import engine, metrics, store

DRAIN_TASK = "cqrs_outbox.drain_outbox"
PURGE_TASK = "cqrs_outbox.purge_outbox"
DEFAULT_EVERY = 60  # seconds between scheduled drains
RUN_SHARE = 0.9  # of the interval a scheduled drain runs, so runs rarely overlap
PURGE_ROUNDS = 100  # purge statements per purge task run


@shared_task(name=DRAIN_TASK, ignore_result=True)
def drain_outbox(
    seconds: float = DEFAULT_EVERY * RUN_SHARE, database: str = "default", once: bool = False
) -> dict:
    """Drain the outbox for at most `seconds` (with `once`, until nothing is pending)."""
    pika_errors.quiet_pika()
    observer = metrics.RelayMetrics(database) if metrics.available() else None
    stats = drain.build_relay(database, observer).run(seconds=seconds, once=once)
    return dataclasses.asdict(stats)


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_outbox(database: str = "default") -> int:
    """Delete events published longer ago than `CQRS['relay']['retention']`."""
    settings = conf.get().relay
    with relay_db.translated():
        db = outbox_db.database(database)
        before = store.utcnow() - datetime.timedelta(seconds=settings.retention)
        return engine.purge(db, before, settings.purge_batch_size, PURGE_ROUNDS)


def schedule_drain(
    every: int = DEFAULT_EVERY,
    database: str = "default",
    queue: str | None = None,
    seconds: float | None = None,
) -> Any:
    """Create (or update) the django-celery-beat periodic task that drains the outbox.

    Each run drains for `seconds` (default: most of the interval). Runs may overlap;
    the leases keep them from publishing the same event twice.
    """
    seconds = seconds or max(1.0, every * RUN_SHARE)
    return _schedule(DRAIN_TASK, every, {"seconds": seconds, "database": database}, queue)


def schedule_purge(
    every: int = 3600, database: str = "default", queue: str | None = None
) -> Any:
    """Create (or update) the django-celery-beat periodic task that purges old events."""
    return _schedule(PURGE_TASK, every, {"database": database}, queue)


def _schedule(task: str, every: int, kwargs: dict, queue: str | None) -> Any:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every, period=IntervalSchedule.SECONDS
    )
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=f"{task} ({kwargs['database']})",
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": json.dumps(kwargs),
            "queue": queue,
            "expire_seconds": every,  # a run that waited a whole interval is stale
            "enabled": True,
        },
    )
    return periodic
