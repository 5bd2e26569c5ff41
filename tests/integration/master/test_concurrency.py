"""Concurrent writers on PostgreSQL and MariaDB: per row, event ids follow commit order and
revisions rise by one per transaction.

On MariaDB the test settings run at REPEATABLE READ: each writer reads the row from a
snapshot that may be stale, but its UPDATE (cqrs_revision = cqrs_revision + 1) waits for
the row lock and reads the latest committed row, as on PostgreSQL at READ COMMITTED.
"""

import threading

import pytest
from django.db import connections, transaction

from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.mysql]

THREADS = 6
ROUNDS = 25
ROWS = 3


def _writer(pks, barrier, errors):
    try:
        barrier.wait()
        for round_no in range(ROUNDS):
            for pk in pks:
                with transaction.atomic():
                    author = models.Author.objects.get(pk=pk)
                    author.name = f"{threading.get_ident()}-{round_no}"
                    author.save()
                    author.save()  # a second save in the same transaction: still one event
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connections.close_all()


def test_threads_updating_same_rows__revisions_rise_by_one_in_id_order():
    pks = [models.Author.objects.create(name="start").pk for _ in range(ROWS)]
    errors = []
    barrier = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=_writer, args=(pks, barrier, errors))
        for _ in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for pk in pks:
        events = list(
            OutboxEvent.objects.filter(cqrs_id="author", instance_pk=str(pk)).order_by("id")
        )
        # Each transaction's revision is its place in the row's commit order (the UPDATE
        # holds the row lock until commit); ids must follow it one by one.
        assert [e.revision for e in events] == list(range(THREADS * ROUNDS + 1))
        assert events[-1].payload.count(f'"cqrs_revision":{THREADS * ROUNDS}') == 1
        final = models.Author.objects.get(pk=pk)
        assert final.cqrs_revision == THREADS * ROUNDS
        assert f'"name":"{final.name}"' in events[-1].payload
