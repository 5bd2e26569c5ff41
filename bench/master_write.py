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


def _rate(model: type, rows: int, atomic: bool) -> float:
    start = time.perf_counter()
    for i in range(rows):
        if atomic:
            with transaction.atomic():
                model.objects.create(name=f"row {i}")
        else:
            model.objects.create(name=f"row {i}")
    return rows / (time.perf_counter() - start)


def _compare(rows: int, rounds: int, atomic: bool) -> tuple[float, float]:
    plain, master = [], []
    for _ in range(rounds):
        plain.append(_rate(models.Plain, rows, atomic))
        master.append(_rate(models.Author, rows, atomic))
    return statistics.median(plain), statistics.median(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="creates per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        _compare(200, 1, atomic=False)  # warm up connections and caches
        print(f"PostgreSQL {connection.pg_version // 10000}: {args.rounds} rounds x "
              f"{args.rows} creates per model, median of rounds")
        for atomic in (True, False):
            p, m = _compare(args.rows, args.rounds, atomic)
            label = "atomic" if atomic else "autocommit"
            print(f"{label:10}  plain model {p:7.0f} creates/s   MasterMixin {m:7.0f} creates/s"
                  f"   ratio {m / p:.2f}")
        print("target: ratio >= 0.80 like for like (atomic); autocommit adds the "
              "transaction's own round trips")
    finally:
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
