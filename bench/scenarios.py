"""The write scenarios of bench/master_write.py, run alike on every column's model."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

BULK = 100  # rows per bulk_create call
PER_TRANSACTION = 10  # saves per transaction in "tx10"

SCENARIOS = ("atomic", "autocommit", "tx10", "tx10-update", "bulk")
FLOOR_SCENARIOS = ("autocommit", "tx10", "bulk")


def run(scenario: str, model: Any, manager: Any, rows: int) -> float:
    """Run `scenario` for `rows` rows of `model`; return rows per second."""
    objs = None
    if scenario == "tx10-update":
        objs = manager.bulk_create([model(name=f"row {i}") for i in range(PER_TRANSACTION)])
        objs = list(model._default_manager.filter(pk__in=[o.pk for o in objs]))
    start = time.perf_counter()
    if scenario == "atomic":
        for i in range(rows):
            with transaction.atomic():
                model.objects.create(name=f"row {i}")
    elif scenario == "autocommit":
        for i in range(rows):
            model.objects.create(name=f"row {i}")
    elif scenario == "tx10":
        for first in range(0, rows, PER_TRANSACTION):
            with transaction.atomic():
                for i in range(first, first + PER_TRANSACTION):
                    model.objects.create(name=f"row {i}")
    elif scenario == "tx10-update":
        for n in range(0, rows, PER_TRANSACTION):
            with transaction.atomic():
                for obj in objs:
                    obj.name = f"row {n}"
                    obj.save()
    elif scenario == "bulk":
        for first in range(0, rows, BULK):
            manager.bulk_create([model(name=f"row {i}") for i in range(first, first + BULK)])
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    return rows / (time.perf_counter() - start)


def _prebuilt(count: int, first: int) -> list:
    """Return `count` SAVE events of Author rows like the scenarios write, built now."""
    from django.utils import timezone

    from cqrs_outbox.master import events
    from tests.testproject.master import models

    now = timezone.now()
    return [events.build(models.Author(pk=first + i, name=f"row {i}", cqrs_revision=0,
                                       cqrs_updated=now), "SAVE", "default")
            for i in range(count)]


def floor(scenario: str, rows: int) -> float:
    """Plain Django's `scenario` plus, in each of its transactions, the event rows the
    outbox would add, built before the clock starts; return rows per second.

    The prebuilt events are queued on the outbox, so they are written as the master
    writes its own at commit, in the same requests (the event INSERT carries the COMMIT
    where the driver allows it).
    """
    import os

    from cqrs_outbox.master import onetrip, outbox
    from tests.testproject.master import models

    if scenario not in FLOOR_SCENARIOS:
        raise ValueError(f"no floor for {scenario!r}; choose from {', '.join(FLOOR_SCENARIOS)}")
    per = {"autocommit": 1, "tx10": PER_TRANSACTION, "bulk": BULK}[scenario]
    # Keys of this process's own, so that several writers' events never share one.
    built = _prebuilt(per, 10**9 + (os.getpid() % 10_000) * 10**5)
    keys = [outbox.event_key(e.cqrs_id, e.instance_pk, e.signal_type) for e in built]
    start = time.perf_counter()
    for first in range(0, rows, per):
        # A bare create gets the master's own transaction for a save; the others the
        # caller's atomic(), as in run().
        block = (onetrip.transaction_for("default") if scenario == "autocommit"
                 else transaction.atomic())
        with block:
            if scenario == "bulk":
                models.Plain.objects.bulk_create(
                    [models.Plain(name=f"row {i}") for i in range(first, first + per)])
            else:
                for i in range(first, first + per):
                    models.Plain.objects.create(name=f"row {i}")
            for key, event in zip(keys, built, strict=True):
                outbox.enqueue("default", key, event=event)
    return rows / (time.perf_counter() - start)
