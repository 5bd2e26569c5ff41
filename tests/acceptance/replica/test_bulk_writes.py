"""The ORM's bulk paths reach a real replica: update(), bulk_update(), bulk_create() and
delete() through `objects`, a custom manager and a related manager, drained by our relay
and applied by our worker, each in a process of its own.

django-cqrs's replicas never hear of these writes (its issues #106, #95, #76); here the
replica ends equal to the master, and each row's events rise one revision at a time.
Also on MariaDB (CQRS_TEST_DB=mariadb), where the rows are named by a locking read
instead of UPDATE ... RETURNING.
"""

from collections import defaultdict

import pytest
from django.db.models import F

from cqrs_outbox.models import OutboxEvent
from tests.acceptance.replica import support
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.mysql]

SETTINGS = "tests.testproject.settings"


@pytest.fixture
def relay(worker_env, tmp_path):
    """Our relay (`cqrs_relay`) as a process, draining the test database's outbox."""
    process = support.django(["cqrs_relay", "--poll-interval", "0.1"], SETTINGS, worker_env,
                             tmp_path / "relay.log")
    yield process
    process.close()


def _master_state():
    return {
        "shelf": {s.pk: (s.name, s.size, s.author_id, s.cqrs_revision)
                  for s in master.Shelf.objects.all()},
        "author": {a.pk: (a.name, a.cqrs_revision) for a in master.Author.objects.all()},
    }


def _replica_state():
    return {
        "shelf": {s.pk: (s.name, s.size, s.author, s.cqrs_revision)
                  for s in replica.ShelfRef.objects.all()},
        "author": {a.pk: (a.name, a.cqrs_revision) for a in replica.AuthorRef.objects.all()},
    }


def _write_in_bulk():
    ann = master.Author.objects.create(name="ann")
    bob = master.Author.objects.create(name="bob")
    master.Shelf.objects.bulk_create([
        master.Shelf(name="s1", author=ann), master.Shelf(name="s2", author=ann),
        master.Shelf(name="s3", author=bob), master.Shelf(name="s4", author=bob),
        master.Shelf(name="loose"),
    ])
    master.Shelf.objects.filter(name__startswith="s").update(size=F("size") + 1)
    master.Shelf.shelves.named("s1").update(name="s1b")          # a custom manager
    ann.shelves.update(size=10)                                  # a related manager
    bobs = list(master.Shelf.objects.filter(author=bob).order_by("pk"))
    for i, shelf in enumerate(bobs):
        shelf.size = 20 + i
    master.Shelf.objects.bulk_update(bobs, ["size"])
    bob.shelves.filter(name="s4").delete()                       # delete, related manager
    master.Shelf.objects.filter(name="loose").delete()
    master.Author.objects.filter(name="ann").update(name="ann b.")
    master.Author.objects.bulk_update([bob], ["name"])


def test_bulk_writes__reach_the_replica_with_revisions_rising_by_one(
        broker, names, start_worker, relay):
    worker = start_worker()
    _write_in_bulk()
    expected = _master_state()
    assert len(expected["shelf"]) == 3 and len(expected["author"]) == 2

    wait_until(lambda: _replica_state() == expected, what="the master's state on the replica")

    saves = defaultdict(list)
    for cqrs_id, pk, revision in (OutboxEvent.objects.filter(signal_type="SAVE")
                                  .order_by("id").values_list("cqrs_id", "instance_pk",
                                                              "revision")):
        saves[cqrs_id, pk].append(revision)
    for key, revisions in saves.items():
        assert revisions == list(range(len(revisions))), key
    assert saves["shelf", str(min(expected["shelf"]))] == [0, 1, 2, 3]  # s1b
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0
