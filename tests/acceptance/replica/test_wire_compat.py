"""Wire compatibility with django-cqrs both ways, each side in a process of its own.

A django-cqrs master publishes and our `cqrs_consume` applies; our outbox events are
published to the exchange and django-cqrs's `cqrs_consume` applies them. Creates,
updates, deletes, a master with a serializer and a mapped replica model.
"""

import datetime
import decimal
import json
import uuid

import pytest

from cqrs_outbox.models import Tombstone
from tests.acceptance.replica import peers, support
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

PEER_MASTER = "tests.peers.master_settings"


def _ours():
    return {
        "author": {r.pk: [r.name, r.cqrs_revision] for r in replica.AuthorRef.objects.all()},
        "publisher": {r.pk: [r.title, r.books, r.cqrs_revision]
                      for r in replica.PublisherRef.objects.all()},
        "tracked": {r.pk: [r.title, r.state, r.cqrs_revision]
                    for r in replica.TrackedRef.objects.all()},
    }


def test_django_cqrs_master__events_are_applied_by_our_worker(broker, names, start_worker,
                                                                worker_env):
    worker = start_worker()
    with peers.database(PEER_MASTER) as db:
        out = support.run_django(
            ["shell", "-c", "from tests.peers.master import scenario; scenario.main()"],
            PEER_MASTER, {"CQRS_PEER_DB_NAME": db, "CQRS_TEST_EXCHANGE": names.exchange},
        )
    expected = {kind: {int(pk): row for pk, row in rows.items()}
                for kind, rows in json.loads(out.splitlines()[-1]).items()}
    assert len(expected["author"]) == 4 and len(expected["publisher"]) == 1

    wait_until(lambda: _ours() == expected, what="the django-cqrs master's state")
    deleted = set(Tombstone.objects.values_list("cqrs_id", flat=True))
    assert deleted == {"author", "publisher"}
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0


def _write_on_our_master():
    ann = master.Author.objects.create(name="Ann")
    bob = master.Author.objects.create(name="Bob")
    ann.name = "Ann B."
    ann.save()
    bob.delete()
    acme = master.Publisher.objects.create(name="acme", book_count=1)
    acme.book_count = 7
    acme.save()
    tracked = master.Tracked.objects.create(name="t", status="open")
    tracked.status = "done"
    tracked.save()
    master.AllFields.objects.create(
        int_field=3, bool_field=True, char_field="c", text_field="t",
        date_field=datetime.date(2026, 1, 2),
        datetime_field=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        decimal_field=decimal.Decimal("1.50"), float_field=0.5, url_field="http://x",
        uuid_field=uuid.UUID(int=7), json_field={"k": [1]}, author=ann,
    )
    return ann, bob, acme, tracked


# Also from a master on MariaDB (CQRS_TEST_DB=mariadb): the peer's replica stays on
# PostgreSQL, and our relay publishes what the MariaDB outbox holds.
@pytest.mark.mysql
def test_our_events__are_applied_by_a_django_cqrs_worker(broker, names, worker_env, tmp_path):
    ann, bob, acme, tracked = _write_on_our_master()
    with peers.replica_worker(names, worker_env["CQRS_TEST_DB_NAME"], tmp_path) as db:

        def authors():
            return peers.rows(db, "SELECT id, name, cqrs_revision FROM "
                                  "peer_replica_authorref ORDER BY id")

        wait_until(lambda: authors() == [(ann.pk, "Ann B.", 1)], what="authors")
        # Other partitions than the authors': published in no set order with them.
        wait_until(lambda: peers.rows(db, "SELECT id, title, books, cqrs_revision FROM "
                                          "peer_replica_publisherref")
                   == [(acme.pk, "ACME", 7, 1)], what="publishers")
        wait_until(lambda: peers.rows(db, "SELECT id, title, state, cqrs_revision FROM "
                                          "peer_replica_trackedref")
                   == [(tracked.pk, "t", "done", 1)], what="tracked")
        wait_until(lambda: peers.rows(db, "SELECT count(*) FROM peer_replica_allfieldsref")
                   == [(1,)], what="all fields")
        [row] = peers.rows(db, "SELECT int_field, bool_field, date_field, datetime_field, "
                               "decimal_field, uuid_field::text, json_field, author "
                               "FROM peer_replica_allfieldsref")
        assert row == (3, True, datetime.date(2026, 1, 2),
                       datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                       decimal.Decimal("1.50"), str(uuid.UUID(int=7)), {"k": [1]}, ann.pk)
        assert broker.count(names.dead_letter_queue) == 0
