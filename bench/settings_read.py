"""What reading `settings.CQRS` live costs a master save, on PostgreSQL.

`conf.get()` compares the `CQRS` dict with a copy of the one it last read, so a change
made in place is seen at once. Measured in the same run: a call of it, a call of a
plain `functools.lru_cache` (the cache that missed in-place changes), how many calls one
master save makes, and what one master save costs. The figure that matters is the
difference per save, as a share of the save.

    python bench/settings_read.py [--calls 1000000] [--rows 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
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

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from cqrs_outbox import conf  # noqa: E402
from tests.testproject.master import models  # noqa: E402


def _per_call_ns(func, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls * 1e9


def _calls_per_save() -> float:
    real, count = conf.get, [0]

    def counting():
        count[0] += 1
        return real()

    conf.get = counting
    try:
        for i in range(50):
            with transaction.atomic():
                models.Author.objects.create(name=f"count {i}")
    finally:
        conf.get = real
    return count[0] / 50


def _save_us(rows: int) -> float:
    start = time.perf_counter()
    for i in range(rows):
        with transaction.atomic():
            models.Author.objects.create(name=f"row {i}")
    return (time.perf_counter() - start) / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="conf.get() calls")
    parser.add_argument("--rows", type=int, default=2000, help="master creates per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cached = functools.lru_cache(maxsize=1)(lambda: conf.build(settings.CQRS))
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        _save_us(200)  # warm up the connection and caches
        live, lru, saves = [], [], []
        for _ in range(args.rounds):
            live.append(_per_call_ns(conf.get, args.calls))
            lru.append(_per_call_ns(cached, args.calls))
            saves.append(_save_us(args.rows))
        live_ns, lru_ns, save_us = (statistics.median(x) for x in (live, lru, saves))
        per_save = _calls_per_save()
        extra_us = per_save * (live_ns - lru_ns) / 1000
        print(f"conf.get() live read       {live_ns:8.0f} ns/call")
        print(f"lru_cache read (old)       {lru_ns:8.0f} ns/call")
        print(f"conf.get() calls per save  {per_save:8.1f}")
        print(f"MasterMixin create         {save_us:8.1f} us (one per transaction.atomic())")
        print(f"live read adds per save    {extra_us:8.3f} us = {extra_us / save_us:.3%} of a save")
    finally:
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
