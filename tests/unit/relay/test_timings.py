"""The relay's timings, at their default values: how long it waits for confirms, how long
a stopping relay still waits, how it backs off after an outage or a refusal, and how
often and how much it purges.

The relay's clock is replaced by one the test moves (the stub broker's wait advances it
by the time the relay asked to wait), so each limit is checked exactly at its value and
not one slice before, without sleeping through it.
"""

import datetime
import types

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import backoff
from relay import engine
from relay.publisher import StubPublisher
from relay.wake import Alarm


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now=1000.0):
        self.now = now

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


class SilentBroker(StubPublisher):
    """A broker that answers nothing until the relay drops the connection; each wait
    for confirms takes, on the test's clock, the time the relay asked for."""

    def __init__(self, clock, on_wait=None):
        super().__init__()
        self.clock = clock
        self.silent = True
        self.silent_waits = []  # the timeout of each wait the broker did not answer
        self.gave_up_after = None  # seconds from the first unanswered wait to the close
        self._on_wait = on_wait

    def wait(self, timeout):
        if self.silent and self._flights:
            self.silent_waits.append(timeout)
            if len(self.silent_waits) == 1:
                self._first_wait = self.clock.now
            self.clock.now += timeout
            if self._on_wait is not None:
                self._on_wait(len(self.silent_waits))
            return None
        return super().wait(timeout)

    def close(self):
        if self.silent and self.silent_waits:
            self.gave_up_after = self.clock.now - self._first_wait
            self.silent = False
        super().close()


def _old_published(outbox, count):
    """Add `count` events published long ago (past any retention); return their ids."""
    ids = [outbox.add("author", pk) for pk in range(count)]
    listed = ", ".join(str(i) for i in ids)
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', "
        f"published_at = '2000-01-01 00:00:00.000000' WHERE id IN ({listed})"
    )
    return ids


# -- waiting for confirms ---------------------------------------------------------------


def test_silent_broker__given_up_after_thirty_seconds_checked_every_half_second(
    outbox, make_relay, clock, relay_logs
):
    """The relay waits for a batch's confirms in half-second slices (so a stop or a due
    lease renewal is seen within half a second) and counts the connection broken after
    30 s without an answer: then the batch goes again on a new connection."""
    broker = SilentBroker(clock)
    event = outbox.add("author", 1)
    stats = make_relay(publisher=broker).run(once=True)
    assert broker.silent_waits == [0.5] * 60
    assert broker.gave_up_after == 30.0
    assert any("no confirmation from the broker within 30s" in r.getMessage()
               for r in relay_logs.records)
    assert [m.event_id for m in broker.messages] == [event]  # published on the new one
    assert stats.published == 1 and outbox.statuses() == ["published"]


def test_slow_broker__leases_renewed_while_waiting_and_none_given_up(
    outbox, make_relay, clock
):
    """While the broker is slow to confirm, the relay renews its leases once they are
    due, so a slow broker does not cost them; and gives none up to a relay that joined
    meanwhile, whose share is handed over only once nothing of it is in flight."""
    from cqrs_outbox.core import contract
    from relay.leases import Leases

    seen = []

    def on_wait(waits):
        if waits == 1:
            relay.leases._renewed_at -= relay.leases.ttl * 0.3  # due, and still safe
        elif waits == 3:
            seen.append((relay.leases.due(), len(relay.leases.held)))
            broker.silent = False  # the confirms arrive

    broker = SilentBroker(clock, on_wait)
    relay = make_relay(publisher=broker)
    db = outbox.connect()
    relay.leases.tick(db)
    newcomer = Leases("b", relay.leases.ttl)
    newcomer.tick(outbox.connect())  # a member now, waiting for its share
    event = outbox.add("author", 1)
    assert relay.run(once=True).published == 1
    assert seen == [(False, contract.PARTITIONS)]
    assert [m.event_id for m in broker.messages] == [event]


def test_stop_while_waiting_for_confirms__waits_five_seconds_then_leaves_it_pending(
    outbox, make_relay, clock
):
    """A relay asked to stop while the broker has not confirmed a batch gives the broker
    5 s from the start of that wait, not the full 30, and then leaves the batch pending
    (it is published again by the next relay)."""
    relay = None

    def stop_at_second_wait(waits):
        if waits == 2:
            relay.stop()

    broker = SilentBroker(clock, on_wait=stop_at_second_wait)
    outbox.add("author", 1)
    relay = make_relay(publisher=broker)
    relay.run()
    assert broker.gave_up_after == 5.0
    assert broker.silent_waits == [0.5] * 10
    assert outbox.statuses() == ["pending"]
    assert broker.messages == []


# -- backing off ------------------------------------------------------------------------


class CountingAlarm(Alarm):
    """An alarm that notes each back-off the relay sleeps, without sleeping, and rings
    after `rounds` of them."""

    def __init__(self, rounds):
        super().__init__()
        self.rounds = rounds
        self.sleeps = []

    def sleep(self, seconds, *others):
        self.sleeps.append(seconds)
        if len(self.sleeps) >= self.rounds:
            self.ring()
        return []


def test_broker_outage__retried_after_a_tenth_of_a_second_doubling_up_to_five(
    outbox, stub, monkeypatch
):
    """While the broker is down the relay retries after at most 0.1 s, then doubles the
    pause, never past 5 s; each pause is jittered down to no less than half of that."""
    ceilings = []

    def uniform(low, high):
        ceilings.append((low, high))
        return high

    monkeypatch.setattr(backoff, "random", types.SimpleNamespace(uniform=uniform))
    stub.available = False
    outbox.add("author", 1)
    alarm = CountingAlarm(rounds=9)
    relay = engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05), alarm=alarm)
    try:
        relay.run()
    finally:
        alarm.close()
    expected = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert alarm.sleeps == pytest.approx(expected)
    assert [low for low, _ in ceilings] == pytest.approx([c / 2 for c in expected])
    assert outbox.statuses() == ["pending"]


@pytest.mark.parametrize(
    "attempts, seconds", [(0, 1), (1, 2), (5, 32), (6, 60), (9, 60)]
)
def test_refusal__retried_after_one_second_doubling_up_to_a_minute(
    outbox, stub, make_relay, attempts, seconds
):
    """An event the broker refused is due again one second later, twice as long after
    each further refusal, and never more than a minute later."""
    stub.max_body = 10
    event = outbox.add("author", 1)
    outbox.db.rowcount("UPDATE cqrs_outbox_event SET attempts = %s", (attempts,))
    before = store.utcnow()
    make_relay(max_attempts=20).run(once=True)
    after = store.utcnow()
    row = {r["id"]: r for r in outbox.rows()}[event]
    due = datetime.datetime.fromisoformat(row["available_at"]).replace(
        tzinfo=datetime.timezone.utc
    )
    delay = datetime.timedelta(seconds=seconds)
    assert (row["status"], row["attempts"]) == ("pending", attempts + 1)
    assert before + delay <= due <= after + delay


# -- purging ----------------------------------------------------------------------------


def test_purge__at_most_ten_statements_a_turn_and_on_at_once_while_behind(
    outbox, stub, clock
):
    """One turn deletes at most ten statements of `purge_batch_size` rows (so a purge
    never holds up publishing for long); a relay left behind goes on at its next turn,
    without waiting for the purge interval."""
    _old_published(outbox, 15)
    alarm = Alarm()
    relay = engine.Relay(
        outbox.connect, stub, engine.Config(retention=3600, purge_batch_size=1), alarm=alarm
    )
    try:
        assert relay.run(once=True).purged == 10
        assert len(outbox.rows()) == 5
        assert relay.run(once=True).purged == 15  # the same clock: no interval waited
    finally:
        alarm.close()
    assert outbox.rows() == []


def test_purge__each_purge_is_told_to_the_observer(outbox, stub, clock):
    """The metrics hear how many events each purge deleted, as the stats count them."""
    from relay import metrics

    class Heard(metrics.Observer):
        def __init__(self):
            self.counts = []

        def purged(self, count):
            self.counts.append(count)

    _old_published(outbox, 3)
    heard = Heard()
    alarm = Alarm()
    relay = engine.Relay(outbox.connect, stub, engine.Config(retention=3600),
                         alarm=alarm, observer=heard)
    try:
        assert relay.run(once=True).purged == 3
    finally:
        alarm.close()
    assert heard.counts == [3]


def test_purge__a_stop_ends_it_after_the_statement_running(outbox):
    """A relay asked to stop while purging finishes the DELETE it is running and leaves
    the rest of the old events to the next purge."""
    _old_published(outbox, 5)
    alarm = Alarm()
    try:
        alarm.ring()
        before = store.utcnow() - datetime.timedelta(hours=1)
        assert engine.purge(outbox.db, before, 1, 10, alarm) == 1
    finally:
        alarm.close()
    assert len(outbox.rows()) == 4


def test_purge__once_a_minute_while_it_keeps_up(outbox, stub, clock):
    """A relay that purged everything past the retention purges again only a minute
    later: not at 59.999 s, and at 60 s."""
    _old_published(outbox, 1)
    alarm = Alarm()
    relay = engine.Relay(outbox.connect, stub, engine.Config(retention=3600), alarm=alarm)
    try:
        assert relay.run(once=True).purged == 1
        _old_published(outbox, 1)
        clock.now = 1059.999  # it purged at 1000.0
        assert relay.run(once=True).purged == 1
        assert len(outbox.rows()) == 1
        clock.now = 1060.0
        assert relay.run(once=True).purged == 2
    finally:
        alarm.close()
    assert outbox.rows() == []


# -- returned events --------------------------------------------------------------------


def test_returned_events_found_at_start__their_key_is_not_warned_about_again(
    outbox, stub, make_relay, relay_logs
):
    """A relay that finds returned events waiting for a replay names their routing key
    once when it starts; a further event returned on that key says nothing new."""
    stub.unroutable = {"author"}
    outbox.add("author", 1)
    make_relay().run(once=True)
    relay_logs.clear()
    outbox.add("author", 2)
    relay = make_relay()
    relay.start()
    assert relay.run(once=True).returned == 1
    said = [r.getMessage() for r in relay_logs.records]
    assert sum("routing key author: 1 event(s) returned" in m for m in said) == 1
    assert not any("no queue is bound to routing key author" in m for m in said)


# -- running for a while ----------------------------------------------------------------


class ClockAlarm(Alarm):
    """An alarm whose naps pass on the test's clock, noted, without sleeping."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.naps = []

    def sleep(self, seconds, *others):
        self.naps.append(seconds)
        self.clock.now += seconds
        return []


def test_run_for_a_while__the_last_nap_is_cut_to_the_time_left(outbox, stub, clock):
    """`run(seconds=S)` of an idle polling relay naps 0.05 s, then twice as long after
    each empty poll, and cuts the nap that would pass the end to the time left: it stops
    at S, not a nap later."""
    alarm = ClockAlarm(clock)
    config = engine.Config(poll_interval=10.0, listen=False)
    relay = engine.Relay(outbox.connect, stub, config, alarm=alarm)
    try:
        relay.run(seconds=0.3)
    finally:
        alarm.close()
    assert alarm.naps == pytest.approx([0.05, 0.1, 0.15])
    assert clock.now == pytest.approx(1000.3)
