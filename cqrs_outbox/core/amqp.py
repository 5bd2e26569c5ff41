"""Connections to RabbitMQ nodes with pika, shared by the relay and the replica consumer.

- `parameters()`: pika's connection parameters for one node: `connection_defaults()`
  (the same for both processes but the heartbeat they choose), the URL's query
  parameters over them (`heartbeat=10`, `connection_attempts=3`, ...), and
  TLS for `amqps://` (`cacertfile`, `certfile`, `keyfile`, `verify`,
  `server_name_indication`).
- `Nodes`: a cluster's addresses taken in turn: after a failure the next node is tried.
- `Silence`: how long the broker has sent nothing. A link that drops every packet without
  a reset shows no error; RabbitMQ sends a heartbeat at least every half heartbeat
  interval, so a whole interval without a byte means the link is gone. pika's own check
  takes up to twice the interval plus ten seconds to say so.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pika
import pika.exceptions

from cqrs_outbox.core import urls
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import BrokerAddress

HEARTBEAT = 30  # seconds between AMQP heartbeats
CONNECT_TIMEOUT = 10.0  # seconds to open the socket, and the connection on it
BLOCKED_TIMEOUT = 60.0  # seconds the broker may block a connection (an alarm) before we drop it


def connection_defaults(heartbeat: int = HEARTBEAT,
                        timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
    """Return the connection settings every connection of ours starts from."""
    return {
        "heartbeat": heartbeat,
        "blocked_connection_timeout": BLOCKED_TIMEOUT,
        "connection_attempts": 1,
        "socket_timeout": timeout,
        "stack_timeout": timeout,
    }


def parameters(address: BrokerAddress, defaults: Mapping[str, Any],
               name: str) -> pika.ConnectionParameters:
    """Return pika's parameters for `address`; its URL's query parameters beat `defaults`.

    `name` is the connection name the broker's management tools show.
    """
    values = dict(defaults)
    tls: dict[str, str] = {}
    for key, text in address.options:
        if key in urls.TLS_OPTIONS:
            tls[key] = text
        elif key in urls.INT_OPTIONS:
            values[key] = int(text)
        elif key in urls.SECONDS_OPTIONS:
            values[key] = float(text)
        else:
            values[key] = text
    return pika.ConnectionParameters(
        host=address.host,
        port=address.port,
        virtual_host=address.vhost,
        credentials=pika.PlainCredentials(address.user, address.password),
        ssl_options=_tls(address, tls) if address.scheme == "amqps" else None,
        client_properties={"connection_name": name},
        **values,
    )


def _tls(address: BrokerAddress, options: Mapping[str, str]) -> pika.SSLOptions:
    try:
        context = ssl.create_default_context(cafile=options.get("cacertfile"))
        if options.get("certfile"):
            context.load_cert_chain(options["certfile"], options.get("keyfile"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load the TLS files of {address.safe_url}: {exc}; fix cacertfile, "
            "certfile or keyfile in the broker URL"
        ) from exc
    if options.get("verify") == "verify_none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return pika.SSLOptions(context, options.get("server_name_indication") or address.host)


def heartbeat_of(address: BrokerAddress, default: int) -> int:
    """Return the heartbeat interval (seconds) a connection to `address` asks for."""
    value = address.option("heartbeat")
    return int(value) if value is not None else default


class Nodes:
    """The addresses of a broker's nodes, tried in turn."""

    def __init__(self, addresses: BrokerAddress | Sequence[BrokerAddress]) -> None:
        found = (addresses,) if isinstance(addresses, BrokerAddress) else tuple(addresses)
        if not found:
            raise ConfigurationError("no broker address given")
        self.addresses = found
        self._index = 0

    @property
    def current(self) -> BrokerAddress:
        """Return the address to connect to now."""
        return self.addresses[self._index]

    def failed(self) -> None:
        """Note that the current address failed: the next one comes first."""
        self._index = (self._index + 1) % len(self.addresses)

    def __len__(self) -> int:
        return len(self.addresses)

    @property
    def safe_urls(self) -> str:
        """Return every address, passwords masked."""
        return urls.safe_urls(self.addresses)


class Silence:
    """Measure how long a connection has received nothing, from pika's byte count."""

    def __init__(self, heartbeat: float) -> None:
        self.limit = heartbeat  # seconds; 0 when heartbeats are off: no limit then
        self._count: int | None = None
        self._since = time.monotonic()

    def heard(self, count: int | None) -> None:
        """Record the connection's received byte count, read after running its I/O."""
        if count is None or count != self._count:
            self._count, self._since = count, time.monotonic()

    def exceeded(self) -> float | None:
        """Return the seconds without a byte if over one heartbeat interval, else None."""
        silent = time.monotonic() - self._since
        return silent if self.limit and silent > self.limit else None


def received(connection: Any) -> int | None:
    """Return how many bytes a pika connection (blocking or not) has received so far."""
    return getattr(_core(connection), "bytes_received", None)


def abandon(connection: Any, reason: str) -> None:
    """Drop a connection whose link went silent, without the closing handshake: a
    graceful close would wait for the broker's answer, which cannot come."""
    terminate = getattr(_core(connection), "_terminate_stream", None)
    if terminate is None:
        return
    terminate(pika.exceptions.StreamLostError(reason))
    try:
        connection.process_data_events(0)  # a blocking connection notices it is gone
    except (pika.exceptions.AMQPError, AttributeError, OSError):
        pass


def server_version(connection: Any) -> str:
    """Return the RabbitMQ version a pika connection's broker announced, or ""."""
    properties = getattr(_core(connection), "server_properties", None) or {}
    version = properties.get("version", b"")
    return version.decode(errors="replace") if isinstance(version, bytes) else str(version)


def _core(connection: Any) -> Any:
    # A BlockingConnection wraps the connection that counts bytes and keeps what the
    # server announced; pika exposes no other way to either.
    return getattr(connection, "_impl", connection)
