"""The drain loop on SQLite with the stub broker: order, verdicts, outages, stop."""

import json
import sqlite3
import threading
import time

import pytest

from cqrs_outbox.core.errors import BrokerUnavailable
from relay import engine, metrics, nacks
from relay.publisher import StubPublisher
from relay.wake import Alarm
from tests.support.waiting import wait_until


@pytest.fixture(autouse=True)
def _no_refusal_backoff(monkeypatch):
    monkeypatch.setattr(engine, "REFUSAL_BACKOFF", 0.0)


def _bodies(stub):
    return [json.loads(m.body) for m in stub.messages]


def test_run_once__publishes_every_event_with_its_exact_body_and_marks_it(
    outbox, stub, make_relay
):
    ids = [outbox.add("author", pk) for pk in range(5)]
    stats = make_relay().run(once=True)
    rows = outbox.rows()
    assert sorted(m.event_id for m in stub.messages) == ids
    assert {m.event_id: m.body for m in stub.messages} == {r["id"]: r["payload"] for r in rows}
    assert all(m.routing_key == "author" for m in stub.messages)
    assert [r["status"] for r in rows] == ["published"] * 5
    assert all(r["published_at"] for r in rows)
    assert stats.published == 5


def test_run_once__keeps_revision_order_per_row_across_many_small_batches(
    outbox, stub, make_relay
):
    for revision in range(6):
        for pk in range(20):
            outbox.add("author", pk, revision)
    make_relay(batch_size=7).run(once=True)
    seen = {}
    for body in _bodies(stub):
        seen.setdefault(body["instance_pk"], []).append(body["instance_data"]["cqrs_revision"])
    assert seen == {pk: list(range(6)) for pk in range(20)}
    assert set(outbox.statuses()) == {"published"}


def test_unroutable__is_marked_published_with_the_reason_and_counted_not_retried(
    outbox, stub, make_relay
):
    stub.unroutable = {"nobody_listens"}
    lost = outbox.add("nobody_listens", 1)
    kept = outbox.add("author", 1)
    stats = make_relay().run(once=True)
    rows = {r["id"]: r for r in outbox.rows()}
    assert rows[lost]["status"] == "published"
    assert "returned" in rows[lost]["last_error"] and "NO_ROUTE" in rows[lost]["last_error"]
    assert rows[kept]["last_error"] == ""
    assert stats.returned == 1 and stats.published == 1
    assert [m.event_id for m in stub.messages] == [kept]


def test_nacked__stays_pending_without_an_attempt_and_the_rest_moves_on(
    outbox, stub, make_relay, relay_logs
):
    """A queue that nacks (full, leaderless) holds its events back, never fails them."""
    stub.nacked = {"cqrs.full_queue.author"}
    nacked = outbox.add("author", 1, 0, queue="full_queue")
    later_same_row = outbox.add("author", 1, 1)
    other = outbox.add("author", 2)
    stats = make_relay(max_attempts=1).run(once=True)
    rows = {r["id"]: r for r in outbox.rows()}
    assert rows[nacked]["status"] == "pending" and rows[nacked]["attempts"] == 0
    assert "nacked" in rows[nacked]["last_error"]
    # Published in the same batch: the broker confirms each message on its own.
    assert rows[other]["status"] == rows[later_same_row]["status"] == "published"
    assert stats.failed == 0 and stats.refused == 0 and stats.nacked == 1
    assert stub.connects == 2  # the next batch went out on a fresh connection
    lines = [r.getMessage() for r in relay_logs.records if "nacked" in r.getMessage()]
    assert lines == ["the broker nacked 1 of 3 events of a batch; publishing them again on "
                     "a fresh connection (a nack counts no attempt)"]

    stub.nacked = set()
    time.sleep(nacks.RETRY_FIRST)  # the nacked event waits this long before it goes again
    make_relay(max_attempts=1).run(once=True)
    rows = {r["id"]: r for r in outbox.rows()}
    assert rows[nacked]["status"] == "published"
    assert rows[nacked]["last_error"] == "" and rows[nacked]["attempts"] == 0
    assert [m.event_id for m in stub.messages] == [later_same_row, other, nacked]


def test_a_connection_nacking_everything__is_reopened_until_the_broker_confirms(
    outbox, stub, make_relay, relay_logs
):
    """As a RabbitMQ channel opened during a quorum queue's leader election does."""
    stub.nacking_connections = 3
    ids = [outbox.add("author", pk) for pk in range(10)]
    stats = make_relay(max_attempts=1).run(once=True)
    rows = outbox.rows()
    assert [r["status"] for r in rows] == ["published"] * 10
    assert {r["attempts"] for r in rows} == {0} and {r["last_error"] for r in rows} == {""}
    assert sorted(m.event_id for m in stub.messages) == ids
    assert stub.connects == 4 and stats.nacked == 30 and stats.failed == 0
    messages = [r.getMessage() for r in relay_logs.records]
    # One line as the nacks begin (an outage: nothing was confirmed), two as they end.
    assert sum("broker unavailable" in m and "nacked every event" in m for m in messages) == 1
    assert sum("broker available again" in m for m in messages) == 1
    assert sum("took every nacked event" in m and "30 nacks in 3 batches" in m
               for m in messages) == 1
    assert len([m for m in messages if "nack" in m]) == 2


def test_nacks_without_end__never_fail_an_event_and_the_broker_counts_as_down(
    outbox, stub
):
    class Recorder(metrics.Observer):
        def __init__(self):
            self.downs = []

        def down(self, what):
            self.downs.append(what)

    stub.nacking_connections = 10**6
    outbox.add("author", 1)
    recorder = Recorder()
    config = engine.Config(max_attempts=1, poll_interval=0.05)
    stats = engine.Relay(outbox.connect, stub, config, observer=recorder).run(seconds=1.5)
    [row] = outbox.rows()
    assert row["status"] == "pending" and row["attempts"] == 0
    assert stats.nacked >= 3 and stats.failed == 0 and stats.published == 0
    assert set(recorder.downs) == {"broker"} and len(recorder.downs) == stats.nacked


def test_too_large__found_by_publishing_one_at_a_time_and_failed_while_the_rest_arrive(
    outbox, stub, make_relay
):
    stub.max_body = 500
    ids = [outbox.add("author", pk) for pk in range(10)]
    big = ids[4]
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET payload = %s WHERE id = %s", ("x" * 1000, big)
    )
    make_relay(max_attempts=1).run(once=True)
    rows = {r["id"]: r for r in outbox.rows()}
    assert rows[big]["status"] == "failed"
    assert "406" in rows[big]["last_error"]
    assert {m.event_id for m in stub.messages} == set(ids) - {big}
    assert all(rows[i]["status"] == "published" for i in ids if i != big)


def test_too_large__its_failure_names_how_many_refusals_it_had(outbox, stub, make_relay,
                                                                relay_logs):
    """The error that ends a refused event names its refusals: max_attempts of them."""
    stub.max_body = 500
    big = outbox.add("author", 1)
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET payload = %s WHERE id = %s", ("x" * 1000, big)
    )
    make_relay(max_attempts=3).run(once=True)
    assert outbox.statuses() == ["failed"]
    errors = [r.getMessage() for r in relay_logs.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].startswith(f"event {big} (routing key author) failed after 3 refusals: ")


def test_unroutable__warned_once_per_routing_key(outbox, stub, make_relay, relay_logs):
    """Every event of a key with no queue bound is returned; the warning is said once
    for the key, not once an event."""
    stub.unroutable = {"author", "book"}
    for pk in range(3):
        outbox.add("author", pk)
    outbox.add("book", 1)
    assert make_relay().run(once=True).returned == 4
    said = [r.getMessage() for r in relay_logs.records]
    for key in ("author", "book"):
        assert sum(f"no queue is bound to routing key {key}" in m for m in said) == 1


class FlakyBroker(StubPublisher):
    """A stub broker refusing the first `failures` connections."""

    def __init__(self, failures):
        super().__init__()
        self.failures = failures

    def connect(self):
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable("connection refused")
        super().connect()


def test_broker_outage__backs_off_logs_once_each_way_and_delivers_everything(
    outbox, make_relay, relay_logs
):
    broker = FlakyBroker(failures=4)
    ids = [outbox.add("author", pk) for pk in range(3)]
    make_relay(publisher=broker).run(once=True)
    assert sorted(m.event_id for m in broker.messages) == ids
    messages = [r.getMessage() for r in relay_logs.records]
    assert sum("broker unavailable" in m for m in messages) == 1
    assert sum("broker available again" in m for m in messages) == 1


def test_database_outage__backs_off_logs_once_each_way_and_delivers_everything(
    outbox, stub, relay_logs
):
    failures = [3]

    def connect():
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("unable to open database file")
        return outbox.connect()

    ids = [outbox.add("author", pk) for pk in range(3)]
    engine.Relay(connect, stub, engine.Config(poll_interval=0.05)).run(once=True)
    assert sorted(m.event_id for m in stub.messages) == ids
    messages = [r.getMessage() for r in relay_logs.records]
    assert sum("database unavailable" in m for m in messages) == 1
    assert sum("database available again" in m for m in messages) == 1


def test_stop__ends_the_run_and_releases_every_lease(outbox, stub, make_relay):
    relay = make_relay()
    outbox.add("author", 1)
    thread = threading.Thread(target=relay.run)
    thread.start()
    deadline = time.monotonic() + 10
    while not stub.messages and time.monotonic() < deadline:
        time.sleep(0.02)
    relay.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert stub.messages
    assert {owner for _, owner in outbox.leases()} == {""}


def test_run_with_seconds__stops_by_itself(outbox, make_relay):
    stats = make_relay().run(seconds=0.3)
    assert stats.published == 0
    assert {owner for _, owner in outbox.leases()} == {""}


def test_missing_tables__is_a_configuration_error(tmp_path, stub):
    from cqrs_outbox import store
    from cqrs_outbox.core.errors import ConfigurationError

    path = tmp_path / "empty.sqlite3"
    path.touch()
    opened = []
    relay = engine.Relay(lambda: opened.append(store.connect(f"sqlite:///{path}"))
                         or opened[-1], stub)
    with pytest.raises(ConfigurationError, match="migrate"):
        relay.start()
    for db in opened:
        db.close()


def test_missing_lease_table__is_a_configuration_error_at_start(outbox, stub):
    """A database whose event table is there but whose lease table is not (a migration
    not run to the end) fails start() with the same clear error, before any turn."""
    from cqrs_outbox.core.errors import ConfigurationError

    outbox.db.rowcount("DROP TABLE cqrs_outbox_lease")
    relay = engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05))
    with pytest.raises(ConfigurationError, match="migrate"):
        relay.start()
    assert stub.connects == 0


def test_database_lost__the_relay_closes_the_old_connection(outbox, stub):
    """A relay that lost its database connects anew and closes the connection it lost,
    so an outage that comes and goes leaves no connection behind."""
    from cqrs_outbox.core.errors import DatabaseUnavailable

    opened = []

    def connect():
        opened.append(outbox.connect())
        return opened[-1]

    cut = [True]

    def before_turn():
        if cut:
            cut.clear()
            raise DatabaseUnavailable("connection to the database lost")
        return 0

    event = outbox.add("author", 1)
    relay = engine.Relay(connect, stub, engine.Config(poll_interval=0.05),
                         before_turn=before_turn)
    assert relay.run(once=True).published == 1
    assert [m.event_id for m in stub.messages] == [event]
    assert len(opened) == 2
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].connection.execute("SELECT 1")


def test_start__connects_to_the_broker_before_the_first_turn(outbox, stub, make_relay):
    """start() opens the broker connection, so the first turn publishes on it instead
    of connecting again."""
    outbox.add("author", 1)
    relay = make_relay()
    relay.start()
    assert (stub.connects, stub.is_open) == (1, True)
    assert relay.run(once=True).published == 1
    assert stub.connects == 1


def test_run_once__goes_on_while_the_step_before_each_turn_finds_work(outbox, stub):
    """`run(once=True)` stops only after a turn that moved nothing: a turn whose capture
    step took changes and whose drain published as many events is not the last."""
    calls = []

    def before_turn():
        calls.append(True)
        if len(calls) > 3:
            return 0
        outbox.add("author", len(calls))  # the change this step turned into an event
        return 1

    relay = engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05),
                         before_turn=before_turn)
    assert relay.run(once=True).published == 3
    assert len(calls) == 4
    assert outbox.statuses() == ["published"] * 3


@pytest.mark.parametrize("second", ["published", "too large"])
def test_run_once__a_turn_that_settled_batches_is_never_the_last(outbox, stub, second):
    """A turn that settled anything is followed by another, however its batches were
    settled (confirmed on the next send, after the last confirm, or refused by the
    broker), so `run(once=True)` also publishes a change the capture step finds then."""
    stub.max_body = 500
    first = outbox.add("author", 1)
    other = outbox.add("author", 2)
    if second == "too large":
        outbox.db.rowcount(
            "UPDATE cqrs_outbox_event SET payload = %s WHERE id = %s", ("x" * 1000, other)
        )
    calls = []

    def before_turn():
        calls.append(True)
        if len(calls) != 2:
            return 0
        outbox.add("author", 3)  # captured while the first turn's batches were in flight
        return 0  # counted by the drain that publishes it

    relay = engine.Relay(
        outbox.connect, stub,
        engine.Config(poll_interval=0.05, batch_size=1, in_flight=1, max_attempts=1),
        before_turn=before_turn,
    )
    relay.run(once=True)
    assert len(calls) == 3
    statuses = {r["id"]: r["status"] for r in outbox.rows()}
    assert statuses.pop(first) == "published"
    assert statuses.pop(other) == ("published" if second == "published" else "failed")
    assert list(statuses.values()) == ["published"]


def test_start__an_unreachable_broker_is_logged_not_raised(outbox, stub, make_relay,
                                                           relay_logs):
    """A relay whose broker is down at start says so at once, without raising: the run
    loop keeps trying the broker, and the event waits for it."""
    stub.available = False
    outbox.add("author", 1)
    relay = make_relay()
    relay.start()
    said = [r.getMessage() for r in relay_logs.records if r.levelname == "WARNING"]
    assert said == ["broker unavailable, retrying with back-off: stub broker is unavailable"]
    assert outbox.statuses() == ["pending"]
    stub.available = True
    assert relay.run(once=True).published == 1


def test_purge__deletes_old_published_events_in_bounded_batches_only(outbox):
    old = [outbox.add("author", pk) for pk in range(5)]
    fresh = outbox.add("author", 99)
    pending = outbox.add("author", 100)
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        "published_at = '2000-01-01 00:00:00.000000' WHERE id <= %s",
        (old[-1],),
    )
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        "published_at = '2999-01-01 00:00:00.000000' WHERE id = %s",
        (fresh,),
    )
    before = engine.store.utcnow()
    assert engine.purge(outbox.db, before, batch_size=2, rounds=2) == 4
    assert engine.purge(outbox.db, before, batch_size=2, rounds=10) == 1
    assert [r["id"] for r in outbox.rows()] == [fresh, pending]


def test_relay__purges_published_events_past_retention_as_it_goes(outbox, make_relay):
    old = outbox.add("author", 1)
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        "published_at = '2000-01-01 00:00:00.000000' WHERE id = %s",
        (old,),
    )
    fresh = outbox.add("author", 2)
    stats = make_relay(retention=3600).run(once=True)
    assert stats.purged == 1
    assert [(r["id"], r["status"]) for r in outbox.rows()] == [(fresh, "published")]


def test_relay__purges_again_next_turn_while_more_is_past_retention(outbox, make_relay):
    old = [outbox.add("author", pk) for pk in range(30)]
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        "published_at = '2000-01-01 00:00:00.000000' WHERE id <= %s",
        (old[-1],),
    )
    fresh = outbox.add("author", 99)
    # Ten statements of two rows per turn: the first turn leaves ten rows behind.
    stats = make_relay(retention=3600, purge_batch_size=2).run(once=True)
    assert stats.purged == 30
    assert [(r["id"], r["status"]) for r in outbox.rows()] == [(fresh, "published")]


def test_purge__goes_past_failed_events_at_the_head_of_the_table(outbox):
    failed = [outbox.add("author", pk) for pk in range(5)]
    old = [outbox.add("author", pk) for pk in range(10, 13)]
    outbox.db.rowcount("UPDATE cqrs_outbox_event SET status = 'failed' WHERE id <= %s",
                       (failed[-1],))
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        "published_at = '2000-01-01 00:00:00.000000' WHERE id >= %s",
        (old[0],),
    )
    assert engine.purge(outbox.db, engine.store.utcnow(), batch_size=2, rounds=1) == 2
    assert [r["id"] for r in outbox.rows()] == [*failed, old[-1]]


class RecordingAlarm(Alarm):
    """An alarm that notes each nap the relay asks for, with the messages sent by then."""

    def __init__(self, stub):
        super().__init__()
        self.stub = stub
        self.naps = []

    def sleep(self, seconds, *others):
        self.naps.append((round(seconds, 3), len(self.stub.messages)))
        return super().sleep(seconds, *others)


def test_polling__backs_off_while_idle_and_polls_soon_again_after_work(outbox, stub):
    alarm = RecordingAlarm(stub)
    config = engine.Config(poll_interval=0.4, listen=False)
    relay = engine.Relay(outbox.connect, stub, config, alarm=alarm)
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        wait_until(lambda: len(alarm.naps) >= 6, timeout=10)
        outbox.add("author", 1)
        wait_until(lambda: alarm.naps[-1][1] == 1, timeout=10)
    finally:
        relay.stop()
        thread.join(10)
        alarm.close()
    idle = [nap for nap, sent in alarm.naps if sent == 0]
    assert idle[:5] == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert [nap for nap, sent in alarm.naps if sent == 1][0] == 0.05
