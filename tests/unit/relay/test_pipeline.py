"""Two batches on the broker at once: each settled in order, from its own verdict."""

import threading

import pytest

from relay import engine
from relay.publisher import StubPublisher
from tests.support.waiting import wait_until


@pytest.fixture(autouse=True)
def _no_refusal_backoff(monkeypatch):
    monkeypatch.setattr(engine, "REFUSAL_BACKOFF", 0.0)


class WatchedBroker(StubPublisher):
    """A stub broker noting each batch sent, and what was marked published when the
    relay began to wait for the verdict on each batch."""

    def __init__(self, outbox):
        super().__init__()
        self.outbox = outbox
        self.sent = []  # event ids of each batch, in the order sent
        self.published_at_wait = []  # ids marked published, per wait for a new verdict
        self._answered = 0

    def send(self, messages):
        super().send(messages)
        self.sent.append([m.event_id for m in messages])

    def wait(self, timeout):
        if len(self.published_at_wait) == self._answered:
            self.published_at_wait.append(
                {r["id"] for r in self.outbox.rows() if r["status"] == "published"}
            )
        outcome = super().wait(timeout)
        if outcome is not None:
            self._answered += 1
        return outcome


def _by_id(outbox):
    return {r["id"]: r for r in outbox.rows()}


def _add(outbox, count, queue=None):
    """Add `count` events of one row, so of one partition: the order they go out in is
    the order they were written."""
    return [outbox.add("author", 1, revision, queue=queue) for revision in range(count)]


def test_two_in_flight__each_batch_is_marked_only_after_its_own_verdict_and_in_order(
    outbox, make_relay
):
    broker = WatchedBroker(outbox)
    ids = _add(outbox, 12)
    stats = make_relay(publisher=broker, batch_size=2, in_flight=2).run(once=True)
    assert broker.most_in_flight == 2
    assert [i for batch in broker.sent for i in batch] == ids  # each sent once, in order
    for k, published in enumerate(broker.published_at_wait):
        # Waiting for batch k: every batch before it is marked, it and later ones not.
        assert published == {i for batch in broker.sent[:k] for i in batch}
    assert set(outbox.statuses()) == {"published"}
    assert stats.published == 12 and stats.batches == 6


def test_in_flight_one__never_sends_before_the_verdict_on_the_batch_before(
    outbox, make_relay
):
    broker = WatchedBroker(outbox)
    _add(outbox, 6)
    make_relay(publisher=broker, batch_size=2, in_flight=1).run(once=True)
    assert broker.most_in_flight == 1
    assert set(outbox.statuses()) == {"published"}


def test_nack_in_the_first_of_two_in_flight__second_is_settled_from_its_own_confirms(
    outbox, make_relay
):
    broker = WatchedBroker(outbox)
    broker.nacked = {"cqrs.full_queue.author"}
    refused = _add(outbox, 1, queue="full_queue")[0]
    first_kept, *second = _add(outbox, 3)
    rest = _add(outbox, 2)
    stats = make_relay(publisher=broker, batch_size=2, max_attempts=1, in_flight=2).run(once=True)
    rows = _by_id(outbox)
    assert broker.sent[:2] == [[refused, first_kept], second]  # both out before the nack
    assert rows[refused]["status"] == "pending" and rows[refused]["attempts"] == 0
    assert "nacked" in rows[refused]["last_error"]
    assert all(rows[i]["status"] == "published" for i in [first_kept, *second])
    # The row's later events wait behind the nacked one, which waits a moment to go again.
    assert all(rows[i]["status"] == "pending" for i in rest)
    confirmed = [m.event_id for m in broker.messages]
    assert sorted(confirmed) == sorted([first_kept, *second])  # none sent twice
    assert stats.nacked == 1 and stats.refused == 0 and stats.failed == 0
    assert broker.connects == 2  # the batches after the nack went out on a new connection


def test_return_in_the_second_of_two_in_flight__is_recorded_for_that_event_only(
    outbox, make_relay
):
    broker = WatchedBroker(outbox)
    broker.unroutable = {"cqrs.nowhere.author"}
    first = _add(outbox, 2)
    lost = _add(outbox, 1, queue="nowhere")[0]
    kept = _add(outbox, 1)[0]
    stats = make_relay(publisher=broker, batch_size=2, in_flight=2).run(once=True)
    rows = _by_id(outbox)
    assert broker.sent == [first, [lost, kept]]
    assert broker.most_in_flight == 2
    assert rows[lost]["status"] == "published" and "NO_ROUTE" in rows[lost]["last_error"]
    assert all(rows[i]["last_error"] == "" for i in [*first, kept])
    assert stats.returned == 1 and stats.published == 3


class StalledBroker(WatchedBroker):
    """A broker that never answers until the relay drops the connection."""

    def close(self):
        super().close()
        self.silent = False


def test_confirm_timeout_with_two_in_flight__marks_neither_and_publishes_both_again(
    outbox, make_relay, relay_logs, monkeypatch
):
    monkeypatch.setattr(engine, "CONFIRM_SLICE", 0.05)
    monkeypatch.setattr(engine, "CONFIRM_TIMEOUT", 0.2)
    broker = StalledBroker(outbox)
    broker.silent = True
    ids = _add(outbox, 4)
    stats = make_relay(publisher=broker, batch_size=2, in_flight=2).run(once=True)
    assert broker.sent == [ids[:2], ids[2:], ids[:2], ids[2:]]  # both again, in order
    assert broker.published_at_wait[0] == set()  # nothing marked while it was silent
    assert [m.event_id for m in broker.messages] == ids
    assert set(outbox.statuses()) == {"published"}
    assert stats.published == 4
    assert any("no confirmation from the broker" in r.getMessage() for r in relay_logs.records)


def test_too_large_with_two_in_flight__searched_one_at_a_time_with_one_in_flight(
    outbox, make_relay
):
    broker = WatchedBroker(outbox)
    broker.max_body = 500
    ids = _add(outbox, 6)
    big = ids[1]
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET payload = %s WHERE id = %s", ("x" * 1000, big)
    )
    make_relay(publisher=broker, batch_size=2, max_attempts=1, in_flight=2).run(once=True)
    rows = _by_id(outbox)
    assert broker.sent[:2] == [ids[:2], ids[2:4]]  # the rejection closes both
    # Then each of the four events that were in flight goes out alone.
    assert broker.sent[2:6] == [[i] for i in ids[:4]]
    assert rows[big]["status"] == "failed" and "406" in rows[big]["last_error"]
    assert all(rows[i]["status"] == "published" for i in ids if i != big)


def test_stop_with_two_in_flight_on_a_silent_broker__ends_marking_nothing(
    outbox, make_relay, monkeypatch
):
    monkeypatch.setattr(engine, "CONFIRM_SLICE", 0.05)
    monkeypatch.setattr(engine, "STOP_GRACE", 0.3)
    broker = WatchedBroker(outbox)
    broker.silent = True
    _add(outbox, 4)
    relay = make_relay(publisher=broker, batch_size=2, in_flight=2)
    thread = threading.Thread(target=relay.run)
    thread.start()
    wait_until(lambda: len(broker.sent) == 2, what="two batches in flight")
    relay.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert set(outbox.statuses()) == {"pending"}  # unconfirmed: published again later
    assert {owner for _, owner in outbox.leases()} == {""}


def test_default_depth__four_batches_on_the_broker_before_the_first_verdict(
    outbox, make_relay
):
    """Four batches in flight by default: the broker persists the later ones while the
    relay marks the oldest, and each is still marked only after its own verdict."""
    broker = WatchedBroker(outbox)
    ids = _add(outbox, 12)
    stats = make_relay(publisher=broker, batch_size=2).run(once=True)
    assert broker.most_in_flight == 4
    assert [i for batch in broker.sent for i in batch] == ids
    assert stats.published == len(ids)
