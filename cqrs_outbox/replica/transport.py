"""The broker as the consumer's apply loop sees it: receive, acknowledge, send on.

`Transport` is the interface the consumer drives, as `relay.publisher.Publisher` is the
relay's. Two implementations: `cqrs_outbox.replica.broker.PikaTransport` (RabbitMQ) and
`StubTransport` here, an in-memory broker for tests of the apply loop that need no
RabbitMQ. Every error a transport raises is one of ours: BrokerUnavailable when the
broker went away (the consumer reconnects), ConfigurationError or AccessRefused when it
refuses the configuration or the credentials (the consumer stops).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cqrs_outbox.core.errors import BrokerUnavailable
from cqrs_outbox.replica import topology
from cqrs_outbox.replica.queue_info import QueueInfo

# Header names the replica adds to what it sends on.
REASON_HEADER = "cqrs-reason"
ROUTING_KEY_HEADER = "cqrs-routing-key"  # the routing key a message was first sent with
QUEUE_HEADER = "cqrs-queue"
FAILED_AT_HEADER = "cqrs-failed-at"
# Set by RabbitMQ on a message it dead-lettered itself (a queue's delivery limit, say).
BROKER_REASON_HEADER = "x-first-death-reason"


def reason_of(headers: dict | None) -> str:
    """Return why a dead letter is one: the replica's reason, else the broker's."""
    headers = headers or {}
    reason, broker = (_text(headers.get(key)) for key in (REASON_HEADER, BROKER_REASON_HEADER))
    if reason:
        return reason
    return f"{broker} (dead-lettered by the broker)" if broker else ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


@dataclass  # one per message: not frozen, which doubles the cost of making one
class Delivery:
    """One message as the broker handed it over."""

    tag: int
    routing_key: str
    properties: Any
    body: bytes

    @property
    def label(self) -> str:
        """Return how log lines name this message."""
        message_id = getattr(self.properties, "message_id", None)
        return f"message {message_id or '#' + str(self.tag)} (routing key {self.routing_key})"

    @property
    def original_routing_key(self) -> str:
        """Return the routing key it was first published with, across retries."""
        headers = getattr(self.properties, "headers", None) or {}
        return headers.get(ROUTING_KEY_HEADER) or self.routing_key


class Transport(abc.ABC):
    """Consume one replica queue and publish what the consumer sends on."""

    @abc.abstractmethod
    def open(self, names: topology.Names, cqrs_ids: list[str], prefetch: int) -> None:
        """Connect, declare the replica's queues and start consuming its queue."""

    @abc.abstractmethod
    def receive(self, timeout: float) -> list[Delivery]:
        """Return the deliveries that arrive within `timeout` seconds (maybe none)."""

    @abc.abstractmethod
    def ack(self, tag: int) -> None:
        """Acknowledge every delivery up to and including `tag`."""

    @abc.abstractmethod
    def send(self, queue: str, body: bytes, properties: Any) -> None:
        """Publish `body` straight to `queue` and wait for the broker's confirm."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; safe to call at any time. Unacknowledged deliveries are
        delivered again on the next `open()`."""

    def queue_info(self) -> QueueInfo | None:
        """Return what the first `open()` learnt about the queue (its type, limits)."""
        return None


@dataclass(frozen=True)
class Sent:
    """A message the consumer published: to which queue, with what body and properties."""

    queue: str
    body: bytes
    properties: Any

    @property
    def headers(self) -> dict:
        """Return the message's headers (an empty dict when it has none)."""
        return getattr(self.properties, "headers", None) or {}


class StubTransport(Transport):
    """An in-memory broker for tests of the consumer.

    `put()` queues a message for the consumer; `sent` lists what the consumer published
    (retries, dead letters), in order; `acked` is the highest tag acknowledged. Deliveries
    not acknowledged when the transport closes are delivered again on the next `open()`,
    as RabbitMQ does. Stage the broker's behaviour with:

    - `available = False`: opening and receiving raise BrokerUnavailable;
    - `refuse_opens`: the next this many `open()` calls raise BrokerUnavailable;
    - `when_idle`: called when the consumer asks for deliveries and none is left
      (a test stops the consumer there);
    - `info`: what `queue_info()` reports about the queue.
    """

    def __init__(self) -> None:
        self.available = True
        self.refuse_opens = 0
        self.when_idle: Callable[[], None] | None = None
        self.info: QueueInfo | None = None
        self.sent: list[Sent] = []
        self.acked = 0
        self.opened: list[tuple[topology.Names, list[str], int]] = []
        self._ready: list[Delivery] = []
        self._unacked: list[Delivery] = []
        self._next_tag = 1
        self._open = False

    def put(self, body: bytes, routing_key: str, properties: Any = None) -> None:
        """Queue a message for the consumer."""
        self._ready.append(Delivery(0, routing_key, properties, body))

    def open(self, names: topology.Names, cqrs_ids: list[str], prefetch: int) -> None:
        if self.refuse_opens > 0 or not self.available:
            self.refuse_opens = max(0, self.refuse_opens - 1)
            raise BrokerUnavailable("stub broker is unavailable")
        self._open = True
        self.opened.append((names, list(cqrs_ids), prefetch))

    def receive(self, timeout: float) -> list[Delivery]:
        if not (self._open and self.available):
            self._open = False
            raise BrokerUnavailable("stub broker went away")
        if not self._ready:
            if self.when_idle is not None:
                self.when_idle()
            return []
        ready, self._ready = self._ready, []
        delivered = []
        for message in ready:
            delivered.append(Delivery(self._next_tag, message.routing_key, message.properties,
                                      message.body))
            self._next_tag += 1
        self._unacked.extend(delivered)
        return delivered

    def ack(self, tag: int) -> None:
        if not self._open:
            raise BrokerUnavailable("stub broker connection is closed")
        self._unacked = [d for d in self._unacked if d.tag > tag]
        self.acked = max(self.acked, tag)

    def send(self, queue: str, body: bytes, properties: Any) -> None:
        if not self._open:
            raise BrokerUnavailable("stub broker connection is closed")
        self.sent.append(Sent(queue, body, properties))

    def queue_info(self) -> QueueInfo | None:
        return self.info

    def close(self) -> None:
        self._open = False
        self._ready[:0] = self._unacked  # requeued ahead of the rest, in order
        self._unacked = []

    def to(self, queue: str) -> list[Sent]:
        """Return what the consumer published to `queue`."""
        return [sent for sent in self.sent if sent.queue == queue]
