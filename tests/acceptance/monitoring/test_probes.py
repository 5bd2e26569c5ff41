"""The probes of running processes: readiness follows the AMQP heartbeat, idle clients
cost no thread.

A black-holed link is the test proxy holding every connection open and forwarding
nothing (`freeze()`): no reset, no error, only silence. RabbitMQ sends a heartbeat at
least every half interval, so a whole interval without a byte means the link is gone.
"""

import socket
import time
from pathlib import Path

import pytest

from tests.acceptance.monitoring import scrape
from tests.acceptance.replica import support as replica_support
from tests.integration.relay import support
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

HEARTBEAT = 3  # seconds, asked for in the broker URL
# 503 is due within two heartbeats; what the probe's own polling adds on top, at most.
SLACK = 2.0  # seconds
IDLE = 500  # connections opened to the metrics port and left without a byte


def _status(port, path="/readyz"):
    return scrape.get(port, path)[0]


def _black_hole(port, proxy, record_property, name):
    """Freeze the link once the process is ready; return the seconds until /readyz says 503."""
    wait_until(lambda: _status(port) == 200, what="ready")
    time.sleep(HEARTBEAT)  # settled: heartbeats flow both ways
    frozen = time.monotonic()
    proxy.freeze()
    wait_until(lambda: _status(port) == 503, what="/readyz to fail after the link froze",
               timeout=2 * HEARTBEAT + SLACK)
    noticed = time.monotonic() - frozen
    record_property(name, round(noticed, 2))
    print(f"\n{name}: /readyz 503 after {noticed:.2f}s (heartbeat {HEARTBEAT}s)")
    assert scrape.get(port, "/readyz")[1] == b'{"ok": false, "reason": "broker unreachable"}\n'
    assert _status(port, "/healthz") == 200
    proxy.thaw()
    wait_until(lambda: _status(port) == 200, what="/readyz to recover once the link thaws")


@pytest.fixture
def exchange():
    from django.conf import settings
    from django.test import override_settings

    name = support.unique("probes_ex")
    with override_settings(CQRS={**settings.CQRS, "exchange": name}):
        yield name


@pytest.fixture
def collector(exchange):
    box = support.Collector(exchange)
    yield box
    box.close()


def test_relay__readyz_fails_within_two_heartbeats_of_a_black_holed_link(
        collector, exchange, tmp_path, record_property):
    port = scrape.free_port()
    with TcpProxy("127.0.0.1", 5672, port=scrape.free_port()) as mq:
        url = mq.url(support.BROKER_URL) + f"?heartbeat={HEARTBEAT}"
        relay = support.RelayProcess(tmp_path, "relay", support.database_url(), exchange,
                                     "--poll-interval", "0.2", "--metrics-port", str(port),
                                     broker=url).start()
        try:
            _black_hole(port, mq, record_property, "relay_readyz_seconds")
            ids = support.write_events(("author", pk, 0) for pk in range(5))
            collector.collect(ids)  # publishing resumed on a new connection
            assert relay.terminate() == 0
        finally:
            if relay.alive():
                relay.kill()
    assert "over the 3s heartbeat: the link is down" in relay.log()


@pytest.fixture
def worker(tmp_path, transactional_db):
    from django.db import connections

    from cqrs_outbox.registry import ReplicaRegistry
    from cqrs_outbox.replica import topology

    queue = replica_support.unique("probes")
    names = topology.Names(replica_support.unique("probes_ex"), queue, f"dead_letter_{queue}",
                           f"{queue}{topology.DELAY_SUFFIX}")
    client = replica_support.Broker(names.exchange)
    topology.declare(client.channel, names, sorted(ReplicaRegistry.models))
    env = {"CQRS_TEST_DB_NAME": connections["default"].settings_dict["NAME"],
           "CQRS_TEST_EXCHANGE": names.exchange, "CQRS_TEST_QUEUE": queue}
    started = []

    def start(*args, url):
        process = replica_support.django(
            ["cqrs_consume", *args], "tests.testproject.settings",
            {**env, "CQRS_BROKER_URL": url}, Path(tmp_path) / "worker.log")
        started.append(process)
        return process

    yield start, client
    for process in started:
        process.close()
    client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
    client.close()


def test_consumer__readyz_fails_within_two_heartbeats_of_a_black_holed_link(
        worker, record_property):
    from tests.integration.replica import events as ev
    from tests.testproject.replica import models

    start, client = worker
    port = scrape.free_port()
    with TcpProxy("127.0.0.1", 5672, port=scrape.free_port()) as mq:
        process = start("--metrics-port", str(port),
                        url=mq.url(support.BROKER_URL) + f"?heartbeat={HEARTBEAT}")
        _black_hole(port, mq, record_property, "consumer_readyz_seconds")
        client.publish(ev.save("author", 1, 0, name="after the thaw"), "author")
        wait_until(lambda: models.AuthorRef.objects.filter(name="after the thaw").exists(),
                   what="an event consumed on the new connection")
        assert process.terminate() == 0
    assert "over the 3s heartbeat: the link is down" in process.log


def _threads(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("Threads:")))


def test_relay__idle_connections_to_the_metrics_port_leave_healthz_answering(
        collector, exchange, tmp_path, record_property):
    port = scrape.free_port()
    relay = support.RelayProcess(tmp_path, "relay", support.database_url(), exchange,
                                 "--metrics-port", str(port)).start()
    idle = []
    try:
        wait_until(lambda: _status(port) == 200, what="ready")
        before = _threads(relay.process.pid)
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        started = time.monotonic()
        status, body = scrape.get(port, "/healthz")
        took = time.monotonic() - started
        assert (status, body) == (200, b'{"ok": true}\n')
        assert _threads(relay.process.pid) <= before  # no thread per connection
        record_property("healthz_seconds_with_500_idle", round(took, 4))
        print(f"\n/healthz answered in {took * 1000:.1f} ms beside {IDLE} idle connections; "
              f"{_threads(relay.process.pid)} threads in the relay")
        assert relay.terminate() == 0
    finally:
        for sock in idle:
            sock.close()
        if relay.alive():
            relay.kill()
    assert "Traceback" not in relay.log()
