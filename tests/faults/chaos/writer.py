"""A master-side writer for the fault suite: random changes on overlapping rows.

Run as a process of its own with the test project's settings:

    python -m tests.faults.chaos.writer --seconds 60 --seed 7 [--pause 0.01]

It creates, updates (one or two saves per transaction), rolls back whole transactions
and savepoints, deletes, bulk-updates and resends (cqrs_sync) rows of chaos.Item, picked
from all rows so that writers collide. It stops after --seconds or on SIGTERM and prints
its counts as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testproject.settings")

import django  # noqa: E402

django.setup()

from django.db import DatabaseError, transaction  # noqa: E402

from tests.testproject.chaos.models import Item  # noqa: E402

PAUSE = 0.002  # seconds between operations by default, so writers leave the relays some CPU


class Rollback(Exception):
    """Raised on purpose to roll a transaction or savepoint back."""


def _pick(rng: random.Random) -> Item | None:
    ids = list(Item.objects.values_list("id", flat=True)[:400])
    return Item.objects.filter(id=rng.choice(ids)).first() if ids else None


def create(rng: random.Random) -> None:
    Item.objects.create(name=f"n{rng.randrange(10**6)}", counter=0)


# Saves of rows read earlier use force_update: when another writer deleted the row in
# between, the save fails (and is counted) instead of trying to insert it again.
def update(rng: random.Random) -> None:
    with transaction.atomic():
        item = _pick(rng)
        if item:
            item.counter += 1
            item.save(force_update=True)


def update_twice(rng: random.Random) -> None:
    with transaction.atomic():
        item = _pick(rng)
        if item:
            item.counter += 1
            item.save(force_update=True)
            item.name = f"twice{rng.randrange(1000)}"
            item.save(force_update=True)


def savepoint_rollback(rng: random.Random) -> None:
    with transaction.atomic():
        item = _pick(rng)
        if not item:
            return
        item.note = f"kept{rng.randrange(1000)}"
        item.save(force_update=True)
        try:
            with transaction.atomic():
                item.note = "rolled back"
                item.save(force_update=True)
                raise Rollback
        except Rollback:
            item.refresh_from_db()
        item.counter += 1
        item.save(force_update=True)


def rollback(rng: random.Random) -> None:
    try:
        with transaction.atomic():
            item = _pick(rng)
            if item:
                item.name = "never"
                item.save(force_update=True)
            Item.objects.create(name="never", counter=-1)
            raise Rollback
    except Rollback:
        pass


def delete(rng: random.Random) -> None:
    with transaction.atomic():
        item = _pick(rng)
        if item:
            item.delete()


def bulk_update(rng: random.Random) -> None:
    ids = list(Item.objects.values_list("id", flat=True)[:400])
    chosen = rng.sample(ids, min(3, len(ids)))
    Item.cqrs.bulk_update(Item.objects.filter(id__in=chosen), note=f"bulk{rng.randrange(100)}")


def sync(rng: random.Random) -> None:
    item = _pick(rng)
    if item:
        item.cqrs_sync()


OPERATIONS = [
    (create, 20), (update, 30), (update_twice, 12), (savepoint_rollback, 8),
    (rollback, 6), (delete, 8), (bulk_update, 6), (sync, 10),
]


def run(seconds: float, seed: int, pause: float = PAUSE) -> dict:
    """Write until `seconds` pass or SIGTERM arrives; return counts per operation."""
    rng = random.Random(seed)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    functions, weights = zip(*OPERATIONS, strict=True)
    counts: dict[str, int] = {"errors": 0}
    deadline = time.monotonic() + seconds
    while not stop["now"] and time.monotonic() < deadline:
        operation = rng.choices(functions, weights)[0]
        try:
            operation(rng)
            counts[operation.__name__] = counts.get(operation.__name__, 0) + 1
        except DatabaseError:  # a deadlock, or a row another writer deleted meanwhile
            counts["errors"] += 1
        time.sleep(pause)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description="chaos writer")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--pause", type=float, default=PAUSE, help="seconds between operations")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.seed, args.pause)), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
