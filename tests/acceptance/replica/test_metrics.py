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
    assert dead == {(("cqrs_id", ""), ("queue", names.queue), ("reason", "bad_message")): 1}
    found = scrape.metrics(port)
    assert found["cqrs_replica_event_lag_seconds_count"] == EVENTS
    assert found["cqrs_replica_apply_batch_seconds_count"] >= 2
    assert scrape.get(port, "/readyz") == (200, b'{"ok": true}\n')
    assert scrape.get(port, "/healthz")[0] == 200

    assert [p.name for p in tmp.iterdir()][0].startswith("cqrs-consume-metrics-")
    assert worker.terminate() == 0
    assert list(tmp.iterdir()) == []  # the run's metrics directory is removed


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
