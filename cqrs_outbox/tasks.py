"""Celery tasks: drain the outbox a few seconds at a time, purge old events; beat schedules.

    from cqrs_outbox import tasks
    tasks.schedule_drain(every=5)   # once, e.g. in a data migration or a shell

creates a django-celery-beat periodic task that runs `cqrs_outbox.drain_outbox` every
five seconds. Each run drains until nothing is pending, but for at most its budget
(`DRAIN_BUDGET`); a run that used its whole budget sends itself again, so a backlog
drains in short runs with the worker free between them, and a warm shutdown waits one
budget at most. Runs that overlap (a slow worker, two beats, a re-sent run) share the
partitions through leases, so no event is published twice by them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from typing import Any

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from cqrs_outbox import conf, drain, store
from cqrs_outbox.core import pika_errors, probes
from cqrs_outbox.store import dbapi
from relay import engine, metrics

DRAIN_TASK = "cqrs_outbox.drain_outbox"
PURGE_TASK = "cqrs_outbox.purge_outbox"
DRAIN_BUDGET = 5.0  # seconds one drain run may hold a worker
DEFAULT_EVERY = 5  # seconds between scheduled drains
PURGE_ROUNDS = 100  # purge statements per purge task run
BEAT_MISSING = ("schedule_drain() and schedule_purge() store their schedule with "
                "django-celery-beat, which is not installed: pip install 'cqrs-outbox[celery]' "
                "and add 'django_celery_beat' to INSTALLED_APPS, or schedule "
                f"{DRAIN_TASK!r} in Celery's own beat_schedule")


@shared_task(name=DRAIN_TASK, ignore_result=True, bind=True)
def drain_outbox(task: Any, seconds: float = DRAIN_BUDGET, database: str = "default",
                 once: bool = True, again: bool = True) -> dict:
    """Drain the outbox until nothing is pending, for at most `seconds`.

    A run that used all of `seconds` may have left events behind; with `again`, a run a
    worker took from its queue sends itself once more to that queue, behind whatever
    else waits there. `once=False` keeps the run going for all of `seconds` even when
    nothing is pending (the behaviour of earlier releases), and never sends itself again.
    """
    pika_errors.quiet_pika()
    observer = metrics.RelayMetrics(database) if probes.available() else None
    started = time.monotonic()
    stats = drain.build_relay(database, observer).run(seconds=seconds, once=once)
    used_up = time.monotonic() - started >= seconds
    if once and again and used_up and not task.request.called_directly:
        delivery = task.request.delivery_info or {}
        task.apply_async(kwargs={"seconds": seconds, "database": database},
                         queue=delivery.get("routing_key") or None)
    return dataclasses.asdict(stats)


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_outbox(database: str = "default") -> int:
    """Delete events published longer ago than `CQRS['relay']['retention']`."""
    settings = conf.get().relay
    with dbapi.translated():
        db = store.wrap(connections[database])
        before = store.utcnow() - datetime.timedelta(seconds=settings.retention)
        return engine.purge(db, before, settings.purge_batch_size, PURGE_ROUNDS)


def schedule_drain(
    every: int = DEFAULT_EVERY,
    database: str = "default",
    queue: str | None = None,
    seconds: float = DRAIN_BUDGET,
) -> Any:
    """Create (or update) the django-celery-beat periodic task that drains the outbox.

    Each run drains until nothing is pending, for at most `seconds`. Runs may overlap;
    the leases keep them from publishing the same event twice.
    """
    return _schedule(DRAIN_TASK, every, {"seconds": seconds, "database": database}, queue)


def schedule_purge(
    every: int = 3600, database: str = "default", queue: str | None = None
) -> Any:
    """Create (or update) the django-celery-beat periodic task that purges old events."""
    return _schedule(PURGE_TASK, every, {"database": database}, queue)


def _schedule(task: str, every: int, kwargs: dict, queue: str | None) -> Any:
    try:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask
    except ImportError as exc:
        raise ImproperlyConfigured(BEAT_MISSING) from exc
    except RuntimeError as exc:  # installed, but not in INSTALLED_APPS
        raise ImproperlyConfigured(BEAT_MISSING) from exc

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
