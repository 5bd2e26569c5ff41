"""The pika publisher with two batches in flight on a real RabbitMQ: each verdict
belongs to its own batch, and the verdicts come back in the order sent."""

import pytest

from cqrs_outbox.core.urls import parse_broker_url
from relay.pika_publisher import PikaPublisher
from relay.publisher import Message, Outcome
from tests.integration.relay import support

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


@pytest.fixture
def publisher(collector, refusing_route):
    publisher = PikaPublisher(parse_broker_url(support.BROKER_URL), collector.exchange)
    publisher.connect()
    yield publisher
    publisher.close()


def _batch(first_id, keys):
    return [Message(first_id + n, key, f'{{"n": {n}}}') for n, key in enumerate(keys)]


def _verdict(publisher):
    for _ in range(60):
        outcome = publisher.wait(0.5)
        if outcome is not None:
            return outcome
    raise AssertionError("no verdict from the broker within 30s")


def test_two_batches_in_flight__each_verdict_names_only_its_own_events(publisher, collector):
    first = _batch(100, ["author", "nobody_binds", "refused_here", "author"])
    second = _batch(200, ["refused_here", "author", "nobody_binds", "author"])
    publisher.send(first)
    publisher.send(second)  # before any verdict on the first
    one, two = _verdict(publisher), _verdict(publisher)
    assert set(one.returned) == {101} and set(one.nacked) == {102}
    assert set(two.returned) == {202} and set(two.nacked) == {200}
    assert "NO_ROUTE" in one.returned[101] and "nacked" in two.nacked[200]
    received = collector.collect([100, 103, 201, 203])
    assert [r.event_id for r in received] == [100, 103, 201, 203]


def test_many_batches_in_flight__answered_in_order_with_nothing_left_over(
    publisher, collector
):
    batches = [_batch(1000 * k, ["author"] * 50) for k in range(1, 4)]
    for batch in batches:
        publisher.send(batch)
    outcomes = [_verdict(publisher) for _ in batches]
    assert all(not o.returned and not o.nacked and not o.refused for o in outcomes)
    assert publisher.wait(0.1) == Outcome()  # nothing left in flight: answered at once
    received = collector.collect([m.event_id for b in batches for m in b])
    assert [r.event_id for r in received] == [m.event_id for b in batches for m in b]


def test_a_batch_goes_to_the_socket_in_a_few_writes__not_three_per_message(
    publisher, collector, monkeypatch
):
    """pika queues method, header and body of each message as buffers of their own; the
    publisher joins a batch's into chunks, so 300 messages take a few system calls, and
    every message still arrives whole and in order."""
    transport = type(publisher._connection._transport)
    sends = []
    real_send = transport._sigint_safe_send

    def counting_send(sock, data):
        sends.append(len(data))
        return real_send(sock, data)

    monkeypatch.setattr(transport, "_sigint_safe_send", staticmethod(counting_send))
    batch = [Message(5000 + n, "author", f'{{"n": {n}, "pad": "{"x" * 300}"}}')
             for n in range(300)]
    publisher.send(batch)
    outcome = _verdict(publisher)
    assert outcome == Outcome()
    assert 1 <= len(sends) <= 4, sends  # 900 frames, about 100 kB
    received = collector.collect([m.event_id for m in batch])
    assert [r.event_id for r in received] == [m.event_id for m in batch]
    assert [r.body for r in received] == [m.body.encode() for m in batch]
