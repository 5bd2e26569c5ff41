"""Workers applying events of the same rows at once: the newest revision wins, exactly.

Each batch locks its rows first (advisory locks on PostgreSQL, lock-table rows on
MariaDB), then reads revisions and tombstones and writes; another worker's batch on the
same rows waits for the commit, so no decision rests on a revision about to change.
"""

import random
import threading

import pytest
from django.db import connections

from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.mysql]

WORKERS = 4
BATCHES = 40
ROWS = 5


def _worker(apply_batch, seed, sent, errors):
    rng = random.Random(seed)
    try:
        for _ in range(BATCHES):
            picked = [(pk, rng.randrange(10_000)) for pk in rng.sample(range(1, ROWS + 1), 3)]
            sent.extend(picked)
            outcomes = apply_batch(*(ev.save("author", pk, rev, name=f"r{rev}")
                                     for pk, rev in picked))
            assert set(outcomes) <= {"applied", "ignored"}, outcomes
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def test_workers_on_the_same_rows__end_at_the_newest_revision(apply_batch):
    sent, errors = [], []
    threads = [threading.Thread(target=_worker, args=(apply_batch, seed, sent, errors))
               for seed in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    newest = {}
    for pk, revision in sent:
        newest[pk] = max(revision, newest.get(pk, -1))
    rows = {r.pk: (r.name, r.cqrs_revision) for r in models.AuthorRef.objects.all()}
    assert rows == {pk: (f"r{rev}", rev) for pk, rev in newest.items()}
