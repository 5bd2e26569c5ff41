"""`cqrs_consume --metrics-port`: the workers' numbers add up on one port; probes follow
the broker."""

import time

import pytest

from tests.acceptance.monitoring import scrape
from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

EVENTS = 1000
DUPLICATES = 10
CUT_NOTICED = 5.0  # seconds within which /readyz must say the broker is gone


def _counts(port):
    found = scrape.metrics(port) or {}
    return (
        found.get("cqrs_replica_events_applied_total", 0),
        found.get("cqrs_replica_events_skipped_total", 0),
        found.get("cqrs_replica_events_dead_lettered_total", 0),
    )


def test_consumer_metrics__two_workers_add_up_on_one_port(broker, names, start_worker,
                                                           tmp_path):
    port = scrape.free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    worker = start_worker("-w", "2", "--batch-size", "50", "--metrics-port", str(port),
                          env={"TMPDIR": str(tmp)})
    wait_until(lambda: _consumers(broker, names.queue) == 2, what="both workers consuming")
    for pk in range(1, EVENTS + 1):
        broker.publish(ev.save("author", pk, 0, name=f"a{pk}"), "author")
    wait_until(lambda: models.AuthorRef.objects.count() == EVENTS, what="every event applied")
    for pk in range(1, DUPLICATES + 1):
        broker.publish(ev.save("author", pk, 0, name=f"a{pk}"), "author")
    broker.publish(b"{not json", "author", message_id="bad")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")

    wait_until(lambda: _counts(port) == (EVENTS, DUPLICATES, 1), what="the summed counts")
    skipped = scrape.labelled(port, "cqrs_replica_events_skipped_total")
    assert skipped == {(("cqrs_id", "author"), ("queue", names.queue),
                        ("reason", "duplicate")): DUPLICATES}
    dead = scrape.labelled(port, "cqrs_replica_events_dead_lettered_total")
    assert dead == {(("cqrs_id", "unknown"), ("queue", names.queue), ("reason", "bad_message")):
                    1}
    found = scrape.metrics(port)
    assert found["cqrs_replica_event_lag_seconds_count"] == EVENTS
    assert found["cqrs_replica_apply_batch_seconds_count"] >= 2
    assert scrape.get(port, "/readyz") == (200, b'{"ok": true}\n')
    assert scrape.get(port, "/healthz")[0] == 200

    assert [p.name for p in tmp.iterdir()][0].startswith("cqrs-consume-metrics-")
    assert worker.terminate() == 0
    assert list(tmp.iterdir()) == []  # the run's metrics directory is removed


RANDOM_IDS = 10_000  # events whose cqrs_id no replica model registers


def test_consumer_metrics__random_cqrs_ids_add_one_label_value_at_most(broker, names,
                                                                       start_worker):
    """Whoever can publish to the queue picks the cqrs_id; only registered ones are labels."""
    import uuid

    port = scrape.free_port()
    worker = start_worker("--metrics-port", str(port))
    wait_until(lambda: _consumers(broker, names.queue) == 1, what="the worker consuming")
    broker.publish(ev.save("author", 1, 0, name="known"), "author")
    for _ in range(RANDOM_IDS):  # straight into the queue: no binding routes them
        body = ev.save(uuid.uuid4().hex, 1, 0)
        broker.channel.basic_publish("", names.queue, _json(body))
    wait_until(lambda: broker.count(names.dead_letter_queue) == RANDOM_IDS,
               what="every unknown cqrs_id dead-lettered", timeout=120)
    wait_until(lambda: _counts(port)[2] == RANDOM_IDS, what="the dead letters counted")
    values = set()
    for name in ("cqrs_replica_events_dead_lettered_total", "cqrs_replica_events_applied_total"):
        values |= {dict(labels)["cqrs_id"] for labels in scrape.labelled(port, name)}
    assert values == {"author", "unknown"}
    assert worker.terminate() == 0


def _json(body):
    import json

    return json.dumps(body).encode()


def _consumers(broker, queue):
    return broker.channel.queue_declare(queue, passive=True).method.consumer_count


def _status(port, path):
    return scrape.get(port, path)[0]


def test_consumer_probes__readyz_fails_within_seconds_of_a_broker_cut_and_recovers(
        broker, names, start_worker):
    port = scrape.free_port()
    with TcpProxy("127.0.0.1", 5672, port=scrape.free_port()) as mq:
        worker = start_worker("-w", "2", "--metrics-port", str(port),
                              env={"CQRS_BROKER_URL": mq.url(support.BROKER_URL)})
        wait_until(lambda: _status(port, "/readyz") == 200, what="the workers to be ready")
        # The link drops and the broker stops answering: new connections hang, as behind
        # a dead network path (closing and reopening the proxy's port would race with
        # whatever else binds ports on the machine).
        mq.freeze()
        mq.cut()
        wait_until(lambda: _status(port, "/readyz") == 503, what="/readyz to fail",
                   timeout=CUT_NOTICED)
        status, body = scrape.get(port, "/readyz")
        assert body == b'{"ok": false, "reason": "broker unreachable"}\n'
        for _ in range(10):  # the workers keep trying and stay alive meanwhile
            assert _status(port, "/healthz") == 200
            time.sleep(0.3)
        mq.thaw()
        wait_until(lambda: _status(port, "/readyz") == 200, what="/readyz to recover")
        assert _status(port, "/healthz") == 200
        broker.publish(ev.save("author", 1, 0, name="after"), "author")
        wait_until(lambda: models.AuthorRef.objects.filter(name="after").exists(),
                   what="an event after the outage")
        assert worker.terminate() == 0
