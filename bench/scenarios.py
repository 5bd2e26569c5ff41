"""The write scenarios of bench/master_write.py, run alike on every column's model."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

BULK = 100  # rows per bulk_create call
PER_TRANSACTION = 10  # saves per transaction in "tx10"

SCENARIOS = ("atomic", "autocommit", "tx10", "tx10-update", "bulk")


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
