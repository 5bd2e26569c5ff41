"""Creates per second: a plain Django model against a MasterMixin model, on PostgreSQL.

Both models have the same columns; the master one also serialises its event and inserts
the outbox row in the same transaction. Rounds alternate between the two so that noise
from a shared machine falls on both alike.

Two baselines are printed. "atomic": each create in its own `transaction.atomic()`, as
in a view under ATOMIC_REQUESTS or a service function; this isolates what the outbox
adds to a save. "autocommit": a bare `create()`, which for the plain model is a single
statement, while the master must open a transaction (BEGIN and COMMIT round trips)
because its row and its event are written together.

    python bench/master_write.py [--rows 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CQRS_TEST_DB", "postgres")
os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_bench_{uuid.uuid4().hex[:8]}")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from tests.testproject.master import models  # noqa: E402

BULK = 100  # rows per bulk_create call


def _rate(model: type, rows: int, atomic: bool) -> float:
    start = time.perf_counter()
    for i in range(rows):
        if atomic:
            with transaction.atomic():
                model.objects.create(name=f"row {i}")
        else:
            model.objects.create(name=f"row {i}")
    return rows / (time.perf_counter() - start)


def _bulk_rate(model: type, rows: int) -> float:
    manager = model.cqrs if hasattr(model, "cqrs") else model.objects
    start = time.perf_counter()
    for first in range(0, rows, BULK):
        manager.bulk_create([model(name=f"row {i}") for i in range(first, first + BULK)])
    return rows / (time.perf_counter() - start)


def _compare(rows: int, rounds: int, mode: str) -> tuple[float, float]:
    plain, master = [], []
    for _ in range(rounds):
        for model, found in ((models.Plain, plain), (models.Author, master)):
            if mode == "bulk":
                found.append(_bulk_rate(model, rows))
            else:
                found.append(_rate(model, rows, atomic=mode == "atomic"))
    return statistics.median(plain), statistics.median(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="creates per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        _compare(200, 1, "autocommit")  # warm up connections and caches
        print(f"PostgreSQL {connection.pg_version // 10000}: {args.rounds} rounds x "
              f"{args.rows} creates per model, median of rounds")
        for mode in ("atomic", "autocommit", "bulk"):
            p, m = _compare(args.rows, args.rounds, mode)
            print(f"{mode:10}  plain model {p:7.0f} creates/s   MasterMixin {m:7.0f} creates/s"
                  f"   ratio {m / p:.2f}")
        print(f"atomic: one create per transaction.atomic(); autocommit: a bare create(), "
              f"one statement for the plain model; bulk: bulk_create of {BULK} per call")
        print("target: ratio >= 0.80")
    finally:
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
