"""A loopback TCP proxy a test puts between a client and a service to stage outages.

    with TcpProxy("127.0.0.1", 5672) as proxy:
        url = proxy.url("amqp://guest:guest@127.0.0.1:5672/%2F")  # points at the proxy
        ...
        proxy.close()   # refuse new connections and drop the open ones: service "down"
        proxy.open()    # accept again on the same port: service "back"
        proxy.cut()     # drop the open connections, keep accepting (a network blip)
        proxy.freeze()  # keep connections open but forward nothing (a silent partition)
        proxy.thaw()    # forward again

`delay` (seconds) holds every chunk that long before forwarding it, each way, so a
request and its answer cross 2 x delay later: a service on another host, for benchmarks.
`python -m tests.support.tcpproxy HOST PORT --delay-ms 0.25` runs one in a process of
its own, prints its port and forwards until its stdin closes; each line "sends" on its
stdin prints how many chunks clients have sent so far (one per request and answer).

One thread accepts, one thread per connection pumps bytes both ways. Everything is
torn down by `stop()` (or leaving the `with` block).
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

TICK = 0.05  # seconds between checks of the stop, close and freeze flags
CHUNK = 65536  # bytes read per call


class _Link:
    """One client connection and its upstream connection, pumped by one thread."""

    def __init__(self, client: socket.socket, upstream: socket.socket, proxy: TcpProxy):
        self.client = client
        self.upstream = upstream
        self.proxy = proxy
        self.dead = threading.Event()

    def run(self) -> None:
        peers = {self.client: self.upstream, self.upstream: self.client}
        with selectors.DefaultSelector() as selector:
            try:
                for sock in peers:
                    selector.register(sock, selectors.EVENT_READ)
            except (ValueError, OSError):  # cut before this thread began: sockets closed
                self.kill()
                return
            while not self.dead.is_set():
                if self.proxy.frozen:
                    self.dead.wait(TICK)
                    continue
                for key, _ in selector.select(TICK):
                    if not self._pump(key.fileobj, peers[key.fileobj]):  # type: ignore[index]
                        self.kill()
        self.kill()

    def _pump(self, source: socket.socket, target: socket.socket) -> bool:
        try:
            data = source.recv(CHUNK)
            if data:
                if source is self.client:
                    self.proxy.sends += 1
                if self.proxy.delay:
                    time.sleep(self.proxy.delay)
                target.sendall(data)
            return bool(data)
        except OSError:
            return False

    def kill(self) -> None:
        """Close both ends at once, as a broken network would."""
        self.dead.set()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.proxy._forget(self)


class TcpProxy:
    """Forward connections from (host, port) to (upstream_host, upstream_port)."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0,
        delay: float = 0.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay  # seconds each chunk waits, each way
        self.sends = 0  # chunks forwarded from clients: about one per round trip
        self.host = host
        self.port = port
        self.frozen = False
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Start listening (on a free port unless one was given) and forwarding."""
        self._stop.clear()
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="tcpproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection and wait for the threads."""
        self._stop.set()
        self._unlisten()
        self.cut()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- staging outages ---------------------------------------------------------

    def close(self) -> None:
        """Refuse new connections and drop the open ones: the service looks down."""
        self._unlisten()
        self.cut()

    def open(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None:
            self._listen()

    def cut(self) -> None:
        """Drop every open connection; new ones are still accepted if the proxy is open."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.kill()

    def freeze(self) -> None:
        """Keep connections open but forward no byte either way."""
        self.frozen = True

    def thaw(self) -> None:
        """Forward bytes again after `freeze()`."""
        self.frozen = False

    # -- inspection --------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Return whether new connections are accepted."""
        return self._listener is not None

    @property
    def connections(self) -> int:
        """Return how many client connections are open through the proxy."""
        with self._lock:
            return len(self._links)

    def url(self, url: str) -> str:
        """Return `url` with its host and port replaced by the proxy's (user, password kept)."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    # -- internals ---------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.settimeout(TICK)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def _unlisten(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                self._stop.wait(TICK)
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream, self)
        with self._lock:
            self._links.add(link)
        threading.Thread(target=link.run, name="tcpproxy-link", daemon=True).start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


def main() -> None:
    """Run a proxy in this process until stdin closes; print its port first."""
    parser = argparse.ArgumentParser(description="Forward a local port to HOST:PORT.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay each way")
    args = parser.parse_args()
    with TcpProxy(args.host, args.port, delay=args.delay_ms / 1000) as proxy:
        print(proxy.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "sends":
                print(proxy.sends, flush=True)


if __name__ == "__main__":
    main()
