"""The probe server: a fixed number of threads, whatever clients do to it."""

import logging
import socket
import threading
import time

import prometheus_client
import pytest

from cqrs_outbox.core import httpd, probes

IDLE = 500  # connections opened and left without a byte


@pytest.fixture
def server():
    registry = prometheus_client.CollectorRegistry()
    probe = probes.Server("127.0.0.1", 0, registry, "cqrs_test")
    yield probe
    probe.close()


def _get(port, path="/healthz", timeout=10.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return _read_all(sock)


def _read_all(sock):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_idle_connections__cost_no_thread_and_healthz_still_answers(server, record_property):
    threads = threading.active_count()
    idle = []
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        started = time.monotonic()
        answer = _get(server.port)
        took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b'{"ok": true, "reason": "starting"}\n')
        assert threading.active_count() == threads  # the server's own threads, no more
    finally:
        for sock in idle:
            sock.close()
    record_property("healthz_seconds_with_500_idle_connections", round(took, 4))
    print(f"\n/healthz answered in {took * 1000:.1f} ms beside {IDLE} idle connections")


def test_server__runs_one_watching_thread_and_a_fixed_pool_of_answering_ones(server):
    names = [t.name for t in threading.enumerate() if t.name.startswith("cqrs-metrics")]
    assert sorted(names) == sorted(["cqrs-metrics-io"]
                                   + [f"cqrs-metrics-{n}" for n in range(httpd.WORKERS)])


def test_slow_request__is_cut_after_the_timeout_with_one_log_line(server, monkeypatch, caplog):
    monkeypatch.setattr(httpd, "REQUEST_TIMEOUT", 0.3)
    caplog.set_level(logging.INFO, logger="cqrs_outbox.core.httpd")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # and never the rest
        assert _read_all(sock) == b""  # closed by the server
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["metrics endpoint: request from 127.0.0.1 failed: no whole request "
                     "within 0.3s"]
    assert not any(r.exc_info for r in caplog.records)


def test_idle_connection__is_closed_after_the_timeout_without_a_log_line(
        server, monkeypatch, caplog):
    monkeypatch.setattr(httpd, "REQUEST_TIMEOUT", 0.3)
    caplog.set_level(logging.DEBUG, logger="cqrs_outbox.core.httpd")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert _read_all(sock) == b""
    assert caplog.records == []


def test_more_connections_than_the_limit__the_oldest_is_closed_to_make_room(server):
    first = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    others = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
              for _ in range(httpd.MAX_CONNECTIONS)]
    try:
        assert _get(server.port).startswith(b"HTTP/1.1 200")
        assert _read_all(first) == b""  # the oldest went
    finally:
        for sock in [first, *others]:
            sock.close()


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /healthz HTTP/1.1\r\n\r\n", b"405"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),  # TLS, say
    (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", b"431"),
    (b"GET /nowhere HTTP/1.1\r\n\r\n", b"404"),
    (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200"),
])
def test_requests__odd_ones_get_a_short_answer_and_one_log_line_at_most(
        server, request_bytes, status, caplog):
    caplog.set_level(logging.INFO, logger="cqrs_outbox.core.httpd")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = _read_all(sock)
    assert answer.split(b" ")[1] == status
    assert len(caplog.records) == (1 if status in (b"400", b"405", b"431") else 0)
    assert all("\n" not in r.getMessage() and not r.exc_info for r in caplog.records)


def test_handler_error__is_a_500_and_one_line_without_a_traceback(monkeypatch, caplog):
    registry = prometheus_client.CollectorRegistry()

    def broken():
        raise RuntimeError("scrape\nbroke")

    probe = probes.Server("127.0.0.1", 0, registry, "cqrs_test", before_read=broken)
    caplog.set_level(logging.INFO, logger="cqrs_outbox.core.httpd")
    try:
        assert _get(probe.port).startswith(b"HTTP/1.1 500")
    finally:
        probe.close()
    [record] = caplog.records
    assert record.getMessage() == "metrics endpoint: answering /healthz failed: scrape\\nbroke"
    assert record.exc_info is None


def test_close__frees_the_port_and_ends_the_threads():
    registry = prometheus_client.CollectorRegistry()
    probe = probes.Server("127.0.0.1", 0, registry, "cqrs_test")
    port = probe.port
    probe.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("cqrs-metrics")]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
