"""The loopback proxy the fault tests stage outages with."""

import socket
import socketserver
import threading
import time

import pytest

from tests.support.tcpproxy import TcpProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def _roundtrip(port, payload=b"ping"):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_proxy__forwards_both_ways(echo):
    with TcpProxy(*echo) as proxy:
        assert _roundtrip(proxy.port) == b"ping"


def test_close__refuses_until_open_on_the_same_port(echo):
    with TcpProxy(*echo) as proxy:
        port = proxy.port
        proxy.close()
        assert not proxy.is_open
        with pytest.raises(OSError):
            _roundtrip(port)
        proxy.open()
        assert proxy.port == port
        assert _roundtrip(port) == b"ping"


def test_cut__drops_open_connections_but_accepts_new_ones(echo):
    with TcpProxy(*echo) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        sock.sendall(b"a")
        assert sock.recv(10) == b"a"
        proxy.cut()
        assert sock.recv(10) == b""
        sock.close()
        assert _roundtrip(proxy.port) == b"ping"


def test_cut__racing_new_connections_leaves_no_thread_failing(echo, monkeypatch):
    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    with TcpProxy(*echo) as proxy:
        stop = threading.Event()

        def cut_until_stopped():
            while not stop.is_set():
                proxy.cut()
                time.sleep(0.0005)  # let the accepting thread run between cuts

        # A daemon, stopped in `finally`: a client failing to connect on a loaded machine
        # fails this test instead of leaving the thread to hold the process open.
        cutter = threading.Thread(target=cut_until_stopped, daemon=True)
        cutter.start()
        try:
            clients = [socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
                       for _ in range(150)]
        finally:
            stop.set()
            cutter.join(timeout=10)
        proxy.cut()
        for client in clients:
            client.close()
    assert failures == []


def test_freeze__forwards_nothing_until_thaw(echo):
    with TcpProxy(*echo) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        proxy.freeze()
        sock.sendall(b"x")
        with pytest.raises(socket.timeout):
            sock.recv(10)
        proxy.thaw()
        sock.settimeout(2)
        assert sock.recv(10) == b"x"
        sock.close()


def test_url__points_at_the_proxy_and_keeps_credentials(echo):
    with TcpProxy(*echo) as proxy:
        url = proxy.url("amqp://u:p@broker.example:5672/%2F")
        assert url == f"amqp://u:p@127.0.0.1:{proxy.port}/%2F"
