"""Relay metrics and probes on SQLite with the stub broker: counts, gauges, endpoints."""

import datetime
import json
import sys
import time
import urllib.error
import urllib.request

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cqrs_outbox.core import probes
from relay import cli, engine, metrics


def _samples(registry):
    text = prometheus_client.generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def registry():
    return prometheus_client.CollectorRegistry()


@pytest.fixture(autouse=True)
def _no_refusal_backoff(monkeypatch):
    monkeypatch.setattr(engine, "REFUSAL_BACKOFF", 0.0)


def _relay(outbox, stub, registry, **config):
    observer = metrics.RelayMetrics("main", registry)
    config.setdefault("poll_interval", 0.05)
    return engine.Relay(outbox.connect, stub, engine.Config(**config), observer=observer)


def test_relay_metrics__count_each_verdict_by_cqrs_id_and_time_commit_to_publish(
    outbox, stub, registry
):
    hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    for pk in range(4):
        outbox.add("author", pk, created=hour_ago)
    outbox.add("book", 1)
    outbox.add("lost", 1)
    outbox.add("refused", 1)
    outbox.add("nacked", 1)
    stub.unroutable.add("lost")
    stub.nacked.add("nacked")
    stub.max_body = 1000  # the broker closes the channel over anything larger
    outbox.db.rowcount("UPDATE cqrs_outbox_event SET payload = %s WHERE cqrs_id = %s",
                       ("x" * 2000, "refused"))
    _relay(outbox, stub, registry, max_attempts=1).run(once=True)
    found = _samples(registry)
    published = "cqrs_outbox_events_published_total"
    assert _value(found, published, database="main", cqrs_id="author") == 4
    assert _value(found, published, database="main", cqrs_id="book") == 1
    assert _value(found, "cqrs_outbox_events_returned_total", database="main",
                  cqrs_id="lost") == 1
    assert _value(found, "cqrs_outbox_events_refused_total", database="main",
                  cqrs_id="refused") == 1
    assert _value(found, "cqrs_outbox_events_failed_total", database="main",
                  cqrs_id="refused") == 1
    # At least once: alone in a batch (the 406 has the relay publish one at a time), it
    # is nacked again after each back-off until another event is confirmed.
    assert _value(found, "cqrs_outbox_events_nacked_total", database="main",
                  cqrs_id="nacked") >= 1
    latency = "cqrs_outbox_commit_to_publish_seconds"
    assert _value(found, f"{latency}_count", database="main") == 5
    # The four events written an hour ago fall above the 15-minute bucket, the fresh one below.
    assert _value(found, f"{latency}_bucket", database="main", le="900.0") == 1
    assert _value(found, "cqrs_outbox_publish_batch_seconds_count", database="main") >= 1
    assert _value(found, "cqrs_outbox_partitions_held", database="main") == 64


def test_relay_metrics__gauge_pending_events_and_the_oldest_ones_age(outbox, stub, registry):
    stub.available = False  # nothing drains, so the backlog stays
    relay = _relay(outbox, stub, registry)
    observer = relay.observer
    ten_minutes_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    outbox.add("author", 1, created=ten_minutes_ago)
    outbox.add("author", 2)
    observer.sample(outbox.connect())
    found = _samples(registry)
    assert _value(found, "cqrs_outbox_pending_events", database="main") == 2
    age = _value(found, "cqrs_outbox_oldest_pending_age_seconds", database="main")
    assert 600 <= age < 660


def _get(server, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def server(registry):
    served = probes.Server("127.0.0.1", 0, registry, metrics.PREFIX)
    yield served
    served.close()


def test_probes__readyz_follows_the_broker_and_healthz_the_loop(outbox, stub, registry, server):
    _relay(outbox, stub, registry)
    assert _get(server, "/readyz")[0] == 503  # nothing tried yet
    _relay(outbox, stub, registry).run(once=True)
    assert _get(server, "/readyz") == (200, b'{"ok": true}\n')
    stub.available = False
    _relay(outbox, stub, registry).run(seconds=0.3)
    status, body = _get(server, "/readyz")
    assert (status, json.loads(body)) == (503, {"ok": False, "reason": "broker unreachable"})
    assert _get(server, "/healthz")[0] == 200
    stub.available = True
    _relay(outbox, stub, registry).run(once=True)
    assert _get(server, "/readyz")[0] == 200
    status, body = _get(server, "/metrics")
    assert status == 200 and b"cqrs_outbox_broker_up" in body
    assert _get(server, "/nothing")[0] == 404


def test_probes__healthz_fails_once_the_loop_stopped_turning(registry, monkeypatch):
    metrics.RelayMetrics("main", registry)
    now = time.time()
    assert probes.liveness(registry, metrics.PREFIX, now).ok
    monkeypatch.setattr(probes.time, "time", lambda: now + probes.STALE_AFTER + 5)
    verdict = probes.liveness(registry, metrics.PREFIX, now)
    assert not verdict.ok
    assert verdict.reason.startswith("the main loop has not turned for 6")


def test_standalone_relay__metrics_port_without_prometheus_client_says_what_to_install(
    outbox, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--database-url", outbox.url, "--broker-url", "amqp://guest@127.0.0.1/",
                  "--metrics-port", "9187"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "relay: error: metrics need prometheus-client, which is not installed: "
        "pip install 'cqrs-outbox[metrics]'"
    ]


def test_standalone_relay__metrics_port_in_use_is_one_line_naming_the_port(
    outbox, server, capsys
):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--database-url", outbox.url, "--broker-url", "amqp://guest@127.0.0.1/",
                  "--metrics-port", str(server.port)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot serve metrics on 127.0.0.1:{server.port}" in err


def test_readiness__not_ready_while_every_publish_is_nacked_ready_once_one_is_confirmed(
    outbox, stub, registry
):
    import threading

    from tests.support.waiting import wait_until

    stub.nacking_connections = 10**6  # each new connection nacks everything, as a stuck one
    outbox.add("author", 1)
    relay = _relay(outbox, stub, registry)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: stub.connects >= 3, what="reconnects after nacks")
        verdict = probes.readiness(registry, metrics.PREFIX)
        assert verdict == probes.Verdict(False, "broker unreachable")
        stub.nacking_connections = 0  # the next connection is confirmed
        wait_until(lambda: outbox.statuses() == ["published"], what="the event published")
        wait_until(lambda: probes.readiness(registry, metrics.PREFIX).ok, what="ready again")
    finally:
        relay.stop()
        thread.join(10)
    [row] = outbox.rows()
    assert row["attempts"] == 0 and row["last_error"] == ""


def test_relay_metrics__returned_events_per_routing_key_until_replayed(
    outbox, stub, registry, caplog
):
    from cqrs_outbox import store

    stub.unroutable = {"author"}
    ids = [outbox.add("author", 1), outbox.add("author", 2), outbox.add("publisher", 1)]
    relay = _relay(outbox, stub, registry)
    relay.start()
    assert relay.run(once=True).returned == 2
    gauge = "cqrs_outbox_returned_events"
    assert _value(_samples(registry), gauge, database="main", routing_key="author") == 2
    db = outbox.connect()
    relay.observer.sample(db)
    assert _value(_samples(registry), gauge, database="main", routing_key="author") == 2
    assert store.summary(db).returned_by_key == (("author", 2),)

    again = _relay(outbox, stub, prometheus_client.CollectorRegistry())
    again.start()  # the next relay's start warns about the key
    assert again.returned_at_start == (("author", 2),)
    assert "routing key author: 2 event(s) returned by the broker as unroutable" in caplog.text

    assert store.replay(db, ids[:2]) == 2
    relay.observer.sample(db)
    assert (gauge, (("database", "main"), ("routing_key", "author"))) not in _samples(registry)
    assert store.summary(db).returned == 0


def test_stopped_relay__lets_go_of_its_metrics_endpoint(outbox, stub, registry):
    """Once the relay stops, its metrics endpoint is closed: the port takes no more
    connections and can be served again (a Celery worker builds a relay per task)."""
    import socket

    observer, served = metrics.serve_relay(0, addr="127.0.0.1", registry=registry)
    port = served.port
    assert _get(served, "/metrics")[0] == 200
    engine.Relay(outbox.connect, stub, engine.Config(poll_interval=0.05),
                 observer=observer).run(once=True)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
