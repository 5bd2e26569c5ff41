"""A small HTTP server for probes and metrics: a fixed number of threads, bounded time.

One thread watches every connection at once and reads requests as their bytes come; a
fixed pool of threads answers the complete ones. An idle or slow client costs a socket,
never a thread: a connection that has not sent its whole request within
`REQUEST_TIMEOUT` is closed, and past `MAX_CONNECTIONS` the oldest one is closed to make
room. So however many connections are left open, `/healthz` is answered at once. Each
failed request is one log line, never a traceback.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from cqrs_outbox.core.escape import one_line

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 128  # open connections at most; the oldest goes when another comes
WORKERS = 2  # threads answering complete requests
REQUEST_TIMEOUT = 5.0  # seconds from a connection's accept to its whole request
WRITE_TIMEOUT = 5.0  # seconds to send an answer to a client that reads slowly
MAX_REQUEST = 8192  # bytes of request line and headers
TICK = 0.25  # seconds between looks for connections that timed out
CHUNK = 4096  # bytes read at a time
SHOWN = 100  # characters of a request line quoted in a log line

# (method, path) -> (status, content type, body)
Handler = Callable[[str, str], tuple[int, str, bytes]]


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    peer: str
    opened: float = field(default_factory=time.monotonic)
    data: bytearray = field(default_factory=bytearray)

    def has_headers(self) -> bool:
        return b"\r\n\r\n" in self.data or b"\n\n" in self.data

    def complete(self) -> bool:
        return self.has_headers() or len(self.data) > MAX_REQUEST


class HttpServer:
    """Answer GET requests with `handler` on (addr, port) until `close()`."""

    def __init__(self, addr: str, port: int, handler: Handler, name: str = "http") -> None:
        self.handler = handler
        self._listener = socket.create_server((addr, port), backlog=MAX_CONNECTIONS)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._clients: dict[socket.socket, _Client] = {}  # waiting for their request
        self._ready: queue.Queue[_Client | None] = queue.Queue()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._watch, name=f"{name}-io", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                          for n in range(WORKERS)]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop serving, close every connection and free the port."""
        self._stopping.set()
        self._wake_w.send(b"x")
        for _ in range(WORKERS):
            self._ready.put(None)
        for thread in self._threads:
            thread.join(WRITE_TIMEOUT + 1)
        for client in list(self._clients.values()):
            self._drop(client)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    # -- the watching thread -------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(TICK):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._wake_r.recv(CHUNK)
                else:
                    self._read(key.data)
            self._expire()

    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: try again next turn
                logger.warning("metrics endpoint: cannot accept a connection: %s", exc)
                return
            sock.setblocking(False)
            client = _Client(sock, str(peer[0]))
            self._clients[sock] = client
            self._selector.register(sock, selectors.EVENT_READ, client)
            if len(self._clients) > MAX_CONNECTIONS:
                oldest = min(self._clients.values(), key=lambda c: c.opened)
                logger.debug("metrics endpoint: closed a connection from %s to make room",
                             oldest.peer)
                self._drop(oldest)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(client, f"connection broke: {exc}")
            return
        if not data:  # the client went away before asking anything
            self._drop(client)
            return
        client.data += data
        if client.complete():
            self._selector.unregister(client.sock)
            del self._clients[client.sock]
            self._ready.put(client)

    def _expire(self) -> None:
        deadline = time.monotonic() - REQUEST_TIMEOUT
        for client in [c for c in self._clients.values() if c.opened < deadline]:
            if client.data:
                self._fail(client, f"no whole request within {REQUEST_TIMEOUT:g}s")
            else:  # opened and never used, as a TCP probe does: not worth a line
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        if self._clients.pop(client.sock, None) is not None:
            self._selector.unregister(client.sock)
        client.sock.close()

    def _fail(self, client: _Client, why: str) -> None:
        logger.info("metrics endpoint: request from %s failed: %s", client.peer, why)
        self._drop(client)

    # -- the answering threads -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            client = self._ready.get()
            if client is None:
                return
            try:
                self._answer(client)
            except OSError as exc:
                logger.info("metrics endpoint: answering %s failed: %s", client.peer, exc)
            finally:
                client.sock.close()

    def _answer(self, client: _Client) -> None:
        line = bytes(client.data).split(b"\n", 1)[0].strip()
        parts = line.split()
        method = parts[0].decode("latin-1") if parts else ""
        if len(client.data) > MAX_REQUEST or not client.has_headers():
            status, kind, body = 431, "text/plain", b"request too large\n"
        elif len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            status, kind, body = 400, "text/plain", b"bad request\n"
        elif method not in ("GET", "HEAD"):
            status, kind, body = 405, "text/plain", b"only GET\n"
        else:
            status, kind, body = self._call(method, parts[1].decode("latin-1"))
        if status in (400, 405, 431):
            logger.info("metrics endpoint: request from %s refused (%s): %s", client.peer,
                        status, one_line(line.decode("latin-1"), SHOWN))
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        client.sock.setblocking(True)
        client.sock.settimeout(WRITE_TIMEOUT)
        client.sock.sendall(head + (body if method != "HEAD" else b""))
        client.sock.shutdown(socket.SHUT_WR)

    def _call(self, method: str, path: str) -> tuple[int, str, bytes]:
        try:
            return self.handler(method, path.split("?", 1)[0])
        except Exception as exc:  # noqa: BLE001 - a probe must answer, whatever broke
            logger.warning("metrics endpoint: answering %s failed: %s",
                           one_line(path, SHOWN), one_line(str(exc) or type(exc).__name__))
            return 500, "text/plain", b"error\n"
