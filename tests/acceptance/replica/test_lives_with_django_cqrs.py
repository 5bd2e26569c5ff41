"""A django-cqrs master deleting through stale instances, and creating a pk again, next
to our `cqrs_consume`; and our repair SYNC at django-cqrs's consumer. Each side runs in
a process of its own."""

import json

import pytest

from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.ops import sync
from tests.acceptance.replica import peers, support
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

PEER_MASTER = "tests.peers.master_settings"


def _authors():
    return {r.pk: [r.name, r.cqrs_revision] for r in replica.AuthorRef.objects.all()}


def test_stale_instance_delete_and_creation_again__our_replica_follows_django_cqrs(
        broker, names, start_worker):
    """django-cqrs's DELETE carries the stale instance's revision plus one (1, for rows
    the replica holds at revision 3); django-cqrs's replica deletes whatever the
    revision, and so must ours. The pk created again arrives with its new fields."""
    worker = start_worker()
    with peers.database(PEER_MASTER) as db:
        out = support.run_django(
            ["shell", "-c", "from tests.peers.master import scenario; scenario.stale_deletes()"],
            PEER_MASTER, {"CQRS_PEER_DB_NAME": db, "CQRS_TEST_EXCHANGE": names.exchange},
        )
    expected = {int(pk): row for pk, row in json.loads(out.splitlines()[-1]).items()}
    [(again, row)] = expected.items()
    assert row == ["created again", 0]
    wait_until(lambda: _authors() == expected, what="the django-cqrs master's authors")
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0


def test_repair_sync__a_django_cqrs_replica_ignores_the_marker_and_applies_it(
        broker, names, worker_env, tmp_path):
    ann = master.Author.objects.create(name="Ann")
    OutboxEvent.objects.all().delete()  # only the repair goes out
    sync.sync_queryset(master.Author.objects.filter(pk=ann.pk), repair=True)
    [payload] = OutboxEvent.objects.values_list("payload", flat=True)
    assert json.loads(payload)["repair"] is True
    with peers.replica_worker(names, worker_env["CQRS_TEST_DB_NAME"], tmp_path) as db:
        wait_until(lambda: peers.rows(db, "SELECT id, name, cqrs_revision FROM "
                                          "peer_replica_authorref") == [(ann.pk, "Ann", 0)],
                   what="the django-cqrs replica's row")
        assert broker.count(names.dead_letter_queue) == 0
