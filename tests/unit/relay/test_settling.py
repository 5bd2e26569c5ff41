"""Settling, leasing and purging at the moments where a slip would lose or reorder events.

Each test builds its moment by hand (a second settle, a lease taken between another
relay's read and its UPDATE, a nack in the middle of a pipeline) rather than by timing.
"""

import datetime

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract
from relay import engine
from relay.leases import Leases
from relay.publisher import StubPublisher

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
SECOND = datetime.timedelta(seconds=1)


def _at(text):
    """Read a datetime the SQLite outbox stored (naive UTC text) as an aware one."""
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _row(outbox, event_id):
    return {r["id"]: r for r in outbox.rows()}[event_id]


# -- a second settle --------------------------------------------------------------------


def test_mark_published__never_turns_a_failed_event_into_a_published_one(outbox):
    """A late confirmation of an event already failed leaves it failed, unpublished."""
    event = outbox.add("author", 1)
    assert store.mark_refused(outbox.db, event, "too big", NOW, max_attempts=1) is True
    assert store.mark_published(outbox.db, [event], NOW) == 0
    row = _row(outbox, event)
    assert row["status"] == contract.STATUS_FAILED
    assert row["published_at"] is None and row["last_error"] == "too big"


def test_mark_refused__on_a_published_event_counts_no_attempt_and_fails_nothing(outbox):
    """A refusal arriving for an event already published changes nothing about it."""
    event = outbox.add("author", 1)
    assert store.mark_published(outbox.db, [event], NOW) == 1
    assert store.mark_refused(outbox.db, event, "late", NOW + SECOND, max_attempts=1) is False
    row = _row(outbox, event)
    assert row["status"] == contract.STATUS_PUBLISHED
    assert row["attempts"] == 0 and row["last_error"] == ""
    assert _at(row["available_at"]) != NOW + SECOND


def test_mark_published__twice_marks_once_and_keeps_the_first_time(outbox):
    """Settling one id twice (a batch settled again) reports 0 the second time and does
    not move published_at."""
    event = outbox.add("author", 1)
    assert store.mark_published(outbox.db, [event], NOW) == 1
    assert store.mark_published(outbox.db, [event], NOW + SECOND) == 0
    assert _at(_row(outbox, event)["published_at"]) == NOW


def test_mark_refused__fails_exactly_at_max_attempts(outbox):
    """max_attempts refusals fail an event; one fewer leaves it pending, due at retry_at."""
    event = outbox.add("author", 1)
    assert store.mark_refused(outbox.db, event, "no", NOW, max_attempts=3) is False
    assert store.mark_refused(outbox.db, event, "no", NOW + SECOND, max_attempts=3) is False
    row = _row(outbox, event)
    assert (row["status"], row["attempts"]) == ("pending", 2)
    assert _at(row["available_at"]) == NOW + SECOND
    assert store.mark_refused(outbox.db, event, "no", NOW, max_attempts=3) is True
    assert (_row(outbox, event)["status"], _row(outbox, event)["attempts"]) == ("failed", 3)


# -- leases -----------------------------------------------------------------------------


def test_take_lease__fails_while_another_owner_holds_it_until_exactly_its_expiry(outbox):
    """A lease held by `a` cannot be taken by `b` before it expires; at the very moment of
    expiry it can. The owner itself may always take it again."""
    store.ensure_partitions(outbox.db)
    assert store.take_lease(outbox.db, 3, "a", "t1", NOW, NOW + 10 * SECOND) is True
    assert store.take_lease(outbox.db, 3, "b", "t2", NOW + 9 * SECOND, NOW + 20 * SECOND) \
        is False
    assert dict(outbox.leases())[3] == "a"
    assert store.take_lease(outbox.db, 3, "a", "t3", NOW + SECOND, NOW + 30 * SECOND) is True
    assert store.take_lease(outbox.db, 3, "b", "t4", NOW + 30 * SECOND, NOW + 40 * SECOND) \
        is True
    assert dict(outbox.leases())[3] == "b"


def test_two_relays_racing__a_lease_taken_between_read_and_update_stays_with_its_taker(
    outbox, monkeypatch
):
    """Relay b reads the lease table (every partition free), then relay a takes its share
    before b's UPDATEs: b gets only what a left, no partition is held by both, and the
    lease table names, for each partition, the one relay that believes it holds it."""
    store.ensure_partitions(outbox.db)
    a, b = Leases("a", ttl=30), Leases("b", ttl=30)
    read = store.leases

    def read_then_let_a_in(db):
        rows = read(db)
        monkeypatch.setattr(store, "leases", read)  # a reads unhooked
        a.tick(outbox.connect())
        return rows

    monkeypatch.setattr(store, "leases", read_then_let_a_in)
    b.tick(outbox.db)
    assert len(a.held) == contract.PARTITIONS // 2
    assert set(a.held).isdisjoint(b.held)
    assert set(a.held) | set(b.held) == set(range(contract.PARTITIONS))
    owners = dict(outbox.leases())
    assert {p for p, o in owners.items() if o == "a"} == set(a.held)
    assert {p for p, o in owners.items() if o == "b"} == set(b.held)


# -- the drain loop ---------------------------------------------------------------------


def test_guard__drops_rows_of_a_partition_lost_after_the_batch_was_read(outbox, stub,
                                                                        make_relay):
    """A batch read while we held a partition is not published once another relay has
    taken that partition: its rows stay pending for the new owner."""
    mine = outbox.add("author", 1)
    lost_partition = contract.partition_for("author", 1)
    relay = make_relay()
    db = outbox.connect()
    relay.leases.tick(db)
    batch = relay._read_batch(db, {})
    assert [r.id for r in batch.rows] == [mine]
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_lease SET owner = 'other', token = 'x' WHERE partition = %s",
        (lost_partition,),
    )
    relay.leases.forget()  # not safe any more: the guard must renew and see the loss
    kept = relay._guard(db, batch)
    assert kept.rows == []
    assert lost_partition not in relay.leases.held
    assert stub.sent_in_order == []
    assert outbox.statuses() == ["pending"]


def test_database_lost_and_back__leases_renewed_before_the_next_batch(outbox, stub):
    """After losing its database, a relay trusts none of its leases until it has renewed
    them: a partition another relay took meanwhile (a standby promoted without our last
    renewal, say) is not published from, though our own clock says the lease is fresh."""
    from cqrs_outbox.core.errors import DatabaseUnavailable

    taken = contract.partition_for("author", 1)
    cut = []

    def before_turn():
        if cut:
            cut.clear()
            outbox.db.rowcount("UPDATE cqrs_outbox_lease SET owner = 'other', token = 'x' "
                               "WHERE partition = %s", (taken,))
            raise DatabaseUnavailable("connection to the database lost")
        return 0

    relay = engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05),
                         before_turn=before_turn)
    relay.leases.tick(outbox.connect())
    assert taken in relay.leases.held
    event = outbox.add("author", 1)
    cut.append(True)
    relay.run(once=True)
    assert stub.sent_in_order == []
    assert outbox.statuses() == ["pending"]
    assert dict(outbox.leases())[taken] == "other"
    assert [r["id"] for r in outbox.rows()] == [event]


def test_guard__renews_mid_drain_but_moves_no_partition(outbox, make_relay):
    """The guard renews what the relay holds while batches fly, and gives up nothing: a
    newcomer's share is handed over between drains, when no row of it is in flight, so
    the newcomer never publishes a row's next revision ahead of ours still unconfirmed."""
    relay = make_relay()
    db = outbox.connect()
    relay.leases.tick(db)
    assert len(relay.leases.held) == contract.PARTITIONS
    newcomer = Leases("b", relay.leases.ttl)
    newcomer.tick(outbox.connect())
    assert newcomer.held == {}  # a member now, waiting for its share
    event = outbox.add("author", 1)
    batch = relay._read_batch(db, {})
    relay.leases.forget()  # the guard must renew now
    kept = relay._guard(db, batch)
    assert [r.id for r in kept.rows] == [event]
    assert len(relay.leases.held) == contract.PARTITIONS
    assert set(dict(outbox.leases()).values()) >= {relay.owner}
    assert relay.leases.safe()


def test_relay__closes_its_own_alarm_and_leaves_one_it_was_given(outbox, make_relay, stub,
                                                                 monkeypatch):
    """A relay closes the wake-up pipe it made (one per run of a Celery task: no file
    descriptors pile up) and leaves open one it was given, which its owner may still ring
    or hand to the next relay."""
    from relay.wake import Alarm

    closed = []

    class Counted(Alarm):
        def close(self):
            closed.append(self)
            super().close()

    monkeypatch.setattr(engine, "Alarm", Counted)
    given = Counted()
    try:
        engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05),
                     alarm=given).run(once=True)
        assert closed == []
    finally:
        given.close()
    own = make_relay()
    assert isinstance(own.alarm, Counted)
    own.run(once=True)
    assert closed == [given, own.alarm]


class CountsIdle(StubPublisher):
    """A stub broker that counts the housekeeping turns the relay gives it."""

    idles = 0

    def idle(self):
        self.idles += 1


def test_idle_relay__gives_the_publisher_its_housekeeping_turns(outbox, make_relay):
    """With nothing to send, the relay hands the publisher a turn after every sleep: the
    AMQP publisher answers the broker's heartbeats there, without which the broker drops
    an idle relay's connection after two missed beats."""
    broker = CountsIdle()
    make_relay(broker).run(seconds=0.3)
    assert broker.idles >= 1
    assert broker.sent_in_order == []


class NacksOnce(StubPublisher):
    """A stub broker that nacks its `nacked` routing keys in the first flight only."""

    def wait(self, timeout):
        outcome = super().wait(timeout)
        self.nacked = set()
        return outcome


def test_nack__the_rows_next_revisions_are_not_published_before_the_nacked_event(
    outbox, make_relay
):
    """With batches pipelined, a nack stops the relay sending what it read beyond the
    nacked event: the revision already in flight goes, but the next one waits until the
    nacked event has gone out again, so the row's later revision is published after it."""
    broker = NacksOnce()
    broker.nacked = {"cqrs.full_queue.author"}
    nacked = outbox.add("author", 1, 0, queue="full_queue")
    in_flight = outbox.add("author", 1, 1)
    later = outbox.add("author", 1, 2)
    make_relay(broker, batch_size=1, in_flight=2).run(once=True)
    assert [m.event_id for m in broker.sent_in_order] == [nacked, in_flight, nacked, later]
    assert [m.event_id for m in broker.messages] == [in_flight, nacked, later]
    assert outbox.statuses() == ["published"] * 3


@pytest.mark.parametrize("first, attempts", [(7.0, 0), (7.0, 2)])
def test_refusal__is_due_again_after_the_backoff_doubled_per_attempt(
    outbox, stub, make_relay, monkeypatch, first, attempts
):
    """A refused event waits REFUSAL_BACKOFF * 2**attempts seconds before it goes again."""
    monkeypatch.setattr(engine, "REFUSAL_BACKOFF", first)
    stub.max_body = 10
    event = outbox.add("author", 1)
    outbox.db.rowcount("UPDATE cqrs_outbox_event SET attempts = %s", (attempts,))
    before = store.utcnow()
    stats = make_relay(max_attempts=10).run(once=True)
    after = store.utcnow()
    # One refusal counted (the figure the relay prints when it stops), none failed.
    assert (stats.refused, stats.failed, stats.published) == (1, 0, 0)
    row = _row(outbox, event)
    assert (row["status"], row["attempts"]) == ("pending", attempts + 1)
    delay = datetime.timedelta(seconds=first * 2**attempts)
    assert before + delay <= _at(row["available_at"]) <= after + delay
    assert stub.messages == []


# -- purge ------------------------------------------------------------------------------


def test_purge__keeps_an_event_published_exactly_at_the_cut_off(outbox):
    """Purge deletes what was published before the cut-off, not at it."""
    older = outbox.add("author", 1)
    at_cut = outbox.add("author", 2)
    store.mark_published(outbox.db, [older], NOW - datetime.timedelta(microseconds=1))
    store.mark_published(outbox.db, [at_cut], NOW)
    # A window of exactly those two: the walk ends at the event published at the cut-off
    # (nothing to go on after), rather than counting it purgeable and going on past it.
    assert store.purge_published(outbox.db, NOW, 2) == (1, None)
    assert [r["id"] for r in outbox.rows()] == [at_cut]
    assert store.purge_published(outbox.db, NOW + datetime.timedelta(microseconds=1), 100)[0] \
        == 1
    assert outbox.rows() == []


def test_purge__a_full_window_of_old_events_goes_on_after_its_last(outbox):
    """A window filled with events published before the cut-off is deleted whole, and the
    walk goes on after its last id; the next window ends it."""
    events = [outbox.add("author", pk) for pk in (1, 2, 3)]
    store.mark_published(outbox.db, events, NOW - SECOND)
    assert store.purge_published(outbox.db, NOW, 2) == (2, events[1])
    assert store.purge_published(outbox.db, NOW, 2, after=events[1]) == (1, None)
    assert outbox.rows() == []


def test_purge__the_walk_ends_at_an_event_still_pending(outbox):
    """The walk stops at the first event still pending (later ids are newer, and are
    purged once it is published), even when old published events follow it."""
    first, waiting, after = (outbox.add("author", pk) for pk in (1, 2, 3))
    store.mark_published(outbox.db, [first, after], NOW - SECOND)
    assert store.purge_published(outbox.db, NOW, 3) == (1, None)
    assert [r["id"] for r in outbox.rows()] == [waiting, after]
    store.mark_published(outbox.db, [waiting], NOW - SECOND)
    assert store.purge_published(outbox.db, NOW, 3) == (2, None)
    assert outbox.rows() == []


def test_reads__each_begins_at_the_next_held_partition(outbox, make_relay):
    """Successive reads begin one held partition further on, so no partition always
    comes last: over a round of 64 reads of one row, a busy partition early in the order
    leads only the reads that begin at or before it, and a later one leads the rest."""
    pks = {}
    for pk in range(500):
        pks.setdefault(contract.partition_for("author", pk), pk)
    low, high = 5, 40
    for partition in (low, high):
        outbox.add("author", pks[partition])  # a read settles nothing: it stays pending
    relay = make_relay(batch_size=1)
    db = outbox.connect()
    relay.leases.tick(db)
    assert len(relay.leases.held) == contract.PARTITIONS
    leads = [relay._read_batch(db, {}).rows[0].partition for _ in range(contract.PARTITIONS)]
    assert leads == [high if low < start <= high else low
                     for start in range(contract.PARTITIONS)]


def test_guard__renews_leases_once_due_though_still_safe(outbox, make_relay):
    """The guard renews as soon as the leases are due (a quarter of the TTL), not only
    once they are no longer safe: a drain whose confirms come at once never waits, so the
    guard is its only renewal, and the lease keeps its full margin against expiry."""
    relay = make_relay()
    db = outbox.connect()
    relay.leases.tick(db)
    event = outbox.add("author", 1)
    batch = relay._read_batch(db, {})
    relay.leases._renewed_at -= relay.leases.ttl * 0.3  # due, and still safe
    assert relay.leases.due() and relay.leases.safe()
    expiry = db.fetchall("SELECT MIN(expires_at) FROM cqrs_outbox_lease WHERE partition >= 0")
    kept = relay._guard(db, batch)
    assert [r.id for r in kept.rows] == [event]
    assert not relay.leases.due()
    renewed = db.fetchall("SELECT MIN(expires_at) FROM cqrs_outbox_lease WHERE partition >= 0")
    assert renewed[0][0] > expiry[0][0]
