"""Store statements each server runs its own way: MySQL's read of pending rows is a UNION
of one branch per partition, and without RETURNING it counts a refusal in two statements.
These run on PostgreSQL and, in the MariaDB pass, on MariaDB."""

import datetime

import pytest
from django.db import connections

from cqrs_outbox import store
from cqrs_outbox.core import contract
from tests.integration.relay import support

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]


def test_read_pending__for_no_partition_or_no_room_reads_nothing():
    """A relay that holds no partition, or has no room left in its batch, gets no rows
    and no error; with room, it gets the partition's row."""
    [event_id] = support.write_events([("author", 1, 0)])
    db = store.wrap(connections["default"])
    partition = contract.partition_for("author", 1)
    assert store.read_pending(db, [], 10) == []
    assert store.read_pending(db, [(partition, 0)], 0) == []
    assert [p.id for p in store.read_pending(db, [(partition, 0)], 10)] == [event_id]


def test_mark_refused__says_failed_exactly_at_the_last_attempt():
    """Each refusal counts one attempt and keeps the event pending, due again at the
    given time; the refusal that reaches max_attempts fails it and says so (the relay
    counts and logs a failed event on that answer). A settled event is not touched."""
    [event_id, settled] = support.write_events([("author", 1, 0), ("author", 2, 0)])
    db = store.wrap(connections["default"])
    db.rowcount("UPDATE cqrs_outbox_event SET status = 'published' WHERE id = %s", (settled,))
    retry_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)

    answers = [store.mark_refused(db, event_id, "refused: 1", retry_at, max_attempts=3)
               for _ in range(3)]

    assert answers == [False, False, True]
    assert store.mark_refused(db, settled, "refused: 1", retry_at, max_attempts=1) is False
    rows = dict(db.fetchall("SELECT id, status FROM cqrs_outbox_event ORDER BY id"))
    assert rows == {event_id: "failed", settled: "published"}
    [(attempts, error)] = db.fetchall(
        "SELECT attempts, last_error FROM cqrs_outbox_event WHERE id = %s", (event_id,))
    assert (attempts, error) == (3, "refused: 1")


def test_renew_leases__answers_with_the_partitions_still_held():
    """Renewing extends only the leases the relay still holds and names them: a partition
    another relay took meanwhile is dropped from the answer (and so from what it drains)."""
    db = store.wrap(connections["default"])
    store.ensure_partitions(db)
    now = datetime.datetime.now(datetime.timezone.utc)
    later = now + datetime.timedelta(minutes=1)
    assert store.take_lease(db, 5, "relay-a", "t5", now, later)
    assert store.take_lease(db, 6, "relay-b", "t6", now, later)

    assert store.renew_leases(db, "relay-a", [5, 6], later + datetime.timedelta(minutes=1)) == {5}
    held = {row.partition: row for row in store.leases(db) if row.partition in (5, 6)}
    assert (held[5].owner, held[6].owner) == ("relay-a", "relay-b")
    assert held[5].expires_at > later >= held[6].expires_at  # only ours was extended


def test_wrap__a_django_connection_not_yet_open_gives_the_driver_connection():
    """The handle made from a Django connection that has not connected yet (a fresh
    thread, or after Django closed it) holds the driver's own connection, which the
    relay's LISTEN and the quoting of the event INSERT use."""
    connection = connections["default"]
    connection.close()
    db = store.wrap(connection)
    assert db.raw is connection.connection and db.raw is not None
    assert db.fetchone("SELECT 1") == (1,)


def test_notifies_and_row_estimate__as_each_server_offers_them():
    """PostgreSQL wakes the relay with NOTIFY and MySQL does not; both estimate a query's
    rows from its plan (the admin's counts of a big outbox), without running it."""
    db = store.wrap(connections["default"])
    postgres = connections["default"].vendor == "postgresql"
    if not postgres:  # InnoDB's own count: none for an empty table or one not there
        db.rowcount("ANALYZE TABLE cqrs_outbox_event")
        assert store.row_estimate(db, "cqrs_outbox_event", False, lambda: "") == 0
        assert store.row_estimate(db, "no_such_table", False, lambda: "") == 0
    support.write_events(("author", pk, 0) for pk in range(40))
    db.rowcount("ANALYZE cqrs_outbox_event" if postgres else "ANALYZE TABLE cqrs_outbox_event")
    from cqrs_outbox.models import OutboxEvent

    estimate = store.row_estimate(db, "cqrs_outbox_event", False,
                                  lambda: OutboxEvent.objects.order_by().explain(format="json"))
    assert store.notifies(db) is postgres
    assert isinstance(estimate, int) and 20 <= estimate <= 80
    # A filtered list is estimated from its own plan, not the table's size.
    failed = OutboxEvent.objects.filter(status="failed").order_by()
    assert store.row_estimate(db, "cqrs_outbox_event", True,
                              lambda: failed.explain(format="json")) < 20


def test_relay_connection__utc_session_autocommit_and_matched_rows_counted():
    """The relay's own connection: its clock and the timestamps it writes are UTC whatever
    the server's zone, each statement commits by itself, and an UPDATE that changes
    nothing still counts the row it matched (the store reads that as "done")."""
    from django.db import connection

    db = store.connect(support.database_url())
    try:
        [event_id] = support.write_events([("author", 1, 0)])
        sql = "UPDATE cqrs_outbox_event SET status = 'pending' WHERE id = %s"
        assert db.rowcount(sql, (event_id,)) == 1  # already pending: matched, not changed
        if connection.vendor == "mysql":
            assert db.fetchone("SELECT @@session.time_zone, @@autocommit, "
                               "@@character_set_connection") == ("+00:00", 1, "utf8mb4")
    finally:
        db.close()


def test_insert_events__mysqls_way_to_the_ids_gives_the_rows_ids_on_any_increment(
        monkeypatch):
    """MySQL has no INSERT ... RETURNING: the ids are the first one and those after it,
    spaced by auto_increment_increment. Run here on MariaDB with its RETURNING set aside,
    at an increment of 3, and at the server's own."""
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("MySQL's and MariaDB's way to the ids")
    from cqrs_outbox.store import mysql

    db = store.wrap(connections["default"])
    assert mysql.is_mariadb(db.raw) is True
    monkeypatch.setattr(mysql, "is_mariadb", lambda raw: False)
    first = support.write_events([("author", pk, 0) for pk in range(3)])
    db.rowcount("SET SESSION auto_increment_increment = 3")
    try:
        spaced = support.write_events([("author", pk, 0) for pk in range(3, 6)])
    finally:
        db.rowcount("SET SESSION auto_increment_increment = 1")
    stored = [row[0] for row in db.fetchall(
        "SELECT id FROM cqrs_outbox_event ORDER BY id")]
    assert first + spaced == stored
    assert spaced[1] - spaced[0] == spaced[2] - spaced[1] == 3
