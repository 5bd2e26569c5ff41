"""A relay with --metrics-port drains the outbox; its scrape shows what it did."""

import io
import socket
import time

import prometheus_client
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tests.acceptance.monitoring import scrape
from tests.integration.relay import support
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

EVENTS = 1000


@pytest.fixture
def exchange():
    name = support.unique("metrics_ex")
    with override_settings(CQRS={**settings.CQRS, "exchange": name}):
        yield name


@pytest.fixture
def collector(exchange):
    box = support.Collector(exchange)
    yield box
    box.close()


@pytest.fixture
def relay(tmp_path, exchange):
    port = scrape.free_port()
    process = support.RelayProcess(
        tmp_path, "relay", support.database_url(), exchange,
        "--poll-interval", "0.2", "--metrics-port", str(port),
    )
    process.port = port
    yield process
    if process.alive():
        process.kill()


def _drained(port):
    found = scrape.metrics(port)
    if found and found.get("cqrs_outbox_events_published_total") == EVENTS and \
            found.get("cqrs_outbox_pending_events") == 0:
        return found
    return None


def test_relay_metrics__scrape_after_draining_1000_events_shows_them_published(
    collector, relay
):
    ids = support.write_events(("author", pk, 0) for pk in range(EVENTS))
    relay.start()
    collector.collect(ids)
    found = wait_until(lambda: _drained(relay.port), what="the scrape to show the drain")
    assert found["cqrs_outbox_commit_to_publish_seconds_count"] == EVENTS
    assert found.get("cqrs_outbox_events_returned_total", 0) == 0
    assert found.get("cqrs_outbox_events_failed_total", 0) == 0
    assert found["cqrs_outbox_failed_events"] == 0
    assert found["cqrs_outbox_partitions_held"] == 64
    assert found["cqrs_outbox_broker_up"] == found["cqrs_outbox_database_up"] == 1
    by_id = scrape.labelled(relay.port, "cqrs_outbox_events_published_total")
    assert list(by_id.values()) == [EVENTS]
    assert dict(next(iter(by_id))) == {"cqrs_id": "author", "database": support.database_url()
                                       .rsplit("/", 1)[-1]}
    assert scrape.get(relay.port, "/healthz")[0] == 200
    assert scrape.get(relay.port, "/readyz") == (200, b'{"ok": true}\n')
    assert relay.terminate() == 0
    assert "serving /metrics, /healthz and /readyz on http://127.0.0.1:" in relay.log()


CUT_NOTICED = 5.0  # seconds within which /readyz must say the broker is gone


def _status(port, path):
    return scrape.get(port, path)[0]


def test_relay_probes__readyz_fails_within_seconds_of_a_broker_cut_and_recovers(
    collector, exchange, tmp_path
):
    port = scrape.free_port()
    with TcpProxy("127.0.0.1", 5672, port=scrape.free_port()) as mq:
        relay = support.RelayProcess(
            tmp_path, "relay", support.database_url(), exchange, "--poll-interval", "0.2",
            "--metrics-port", str(port), broker=mq.url(support.BROKER_URL),
        ).start()
        try:
            wait_until(lambda: _status(port, "/readyz") == 200, what="the relay to be ready")
            mq.freeze()  # the broker stops answering and the link drops
            mq.cut()
            wait_until(lambda: _status(port, "/readyz") == 503, what="/readyz to fail",
                       timeout=CUT_NOTICED)
            assert scrape.get(port, "/readyz")[1] == (
                b'{"ok": false, "reason": "broker unreachable"}\n')
            ids = support.write_events(("author", pk, 0) for pk in range(10))
            for _ in range(10):  # the relay keeps retrying and stays alive meanwhile
                assert _status(port, "/healthz") == 200
                time.sleep(0.3)
            mq.thaw()
            wait_until(lambda: _status(port, "/readyz") == 200, what="/readyz to recover")
            collector.collect(ids)
            assert _status(port, "/healthz") == 200
            assert relay.terminate() == 0
        finally:
            if relay.alive():
                relay.kill()


def _published(database):
    value = prometheus_client.REGISTRY.get_sample_value(
        "cqrs_outbox_events_published_total", {"database": database, "cqrs_id": "author"})
    return value or 0


def test_cqrs_relay__metrics_port_setting_records_the_drain_and_frees_the_port_at_exit(
    collector,
):
    port = scrape.free_port()
    before = _published("default")
    ids = support.write_events(("author", pk, 0) for pk in range(20))
    relay_settings = {**settings.CQRS.get("relay", {}), "metrics_port": port}
    with override_settings(CQRS={**settings.CQRS, "exchange": collector.exchange,
                                 "relay": relay_settings}):
        call_command("cqrs_relay", "--once", stdout=io.StringIO())
    collector.collect(ids)
    assert _published("default") - before == 20
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the endpoint closed when the relay stopped


def test_celery_drain_task__records_into_the_workers_registry(collector):
    from cqrs_outbox import tasks

    before = _published("default")
    ids = support.write_events(("author", pk, 0) for pk in range(15))
    with override_settings(CQRS={**settings.CQRS, "exchange": collector.exchange}):
        stats = tasks.drain_outbox(once=True)
    collector.collect(ids)
    assert stats["published"] == 15
    assert _published("default") - before == 15
