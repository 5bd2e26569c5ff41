"""The consumer's apply loop against the in-memory broker: a real database, no RabbitMQ."""

import json

import pika
import pytest

from cqrs_outbox.replica import consumer, transport
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stub():
    return transport.StubTransport()


def _run(stub, **options):
    """Run a consumer on `stub` until it has nothing left to read; return it."""
    worker = consumer.Consumer(["author", "flaky"], transport=stub, **options)
    stub.when_idle = worker.stop
    worker.run()
    return worker


def _put(stub, body, routing_key="author", message_id=None):
    raw = body if isinstance(body, bytes) else ev.encode(body)
    stub.put(raw, routing_key, pika.BasicProperties(message_id=message_id))


def test_consumer__applies_a_batch_and_acknowledges_it(stub):
    for pk in (1, 2, 3):
        _put(stub, ev.save("author", pk, 0, name=f"a{pk}"))

    worker = _run(stub)

    assert dict(models.AuthorRef.objects.values_list("pk", "name")) == {
        1: "a1", 2: "a2", 3: "a3"}
    assert (worker.applied, stub.acked, stub.sent) == (3, 3, [])
    [(names, cqrs_ids, prefetch)] = stub.opened
    assert cqrs_ids == ["author", "flaky"] and prefetch >= worker.batch_size


def test_consumer__dead_letters_a_bad_body_with_its_reason_and_goes_on(stub):
    _put(stub, b"{not json", message_id="bad")
    _put(stub, ev.save("author", 1, 0, name="good"))

    worker = _run(stub)

    [dead] = stub.to(worker.names.dead_letter_queue)
    assert dead.body == b"{not json"
    assert dead.headers[transport.REASON_HEADER].startswith("bad message: body is not JSON")
    assert dead.headers[transport.ROUTING_KEY_HEADER] == "author"
    assert dead.properties.message_id == "bad"
    assert models.AuthorRef.objects.get(pk=1).name == "good"
    assert stub.acked == 2


def test_consumer__sends_a_failed_event_to_the_delay_queue_with_retries_raised(
        stub, tmp_path, monkeypatch):
    monkeypatch.setenv("CQRS_TEST_CONTROL_DIR", str(tmp_path))
    _put(stub, ev.save("flaky", 1, 0, name="fail:1"), routing_key="flaky")

    worker = _run(stub)

    [retry] = stub.to(worker.names.delay_queue)
    assert json.loads(retry.body)["retries"] == 1
    assert "flaky 1 fails attempt 1" in retry.headers[transport.REASON_HEADER]
    assert retry.properties.expiration == "1000"  # CQRS_RETRY_DELAY of the test settings
    assert not models.FlakyRef.objects.exists()
    assert stub.acked == 1


def test_consumer__reconnects_when_the_broker_is_away_and_then_applies(stub, monkeypatch):
    monkeypatch.setattr(consumer, "BACKOFF_BASE", 0.01)
    stub.refuse_opens = 2
    _put(stub, ev.save("author", 1, 0, name="late"))

    worker = _run(stub)

    assert len(stub.opened) == 1  # after two refused attempts
    assert models.AuthorRef.objects.get(pk=1).name == "late"
    assert worker.applied == 1


def test_stub_transport__delivers_unacknowledged_messages_again_after_a_reconnect(stub):
    names = consumer.topology.Names("x", "q", "dead_letter_q", "q_delay")
    stub.put(b"1", "author")
    stub.put(b"2", "author")
    stub.open(names, ["author"], 10)
    first, second = stub.receive(0)
    stub.ack(first.tag)
    stub.close()
    stub.open(names, ["author"], 10)
    [again] = stub.receive(0)
    assert again.body == second.body and again.tag > second.tag
