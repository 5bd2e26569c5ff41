"""Publishers: put a batch of outbox events on the broker and learn what it made of them.

`Publisher` is the interface the engine drives: `send()` a batch without waiting, do
other work, then `wait()` for the broker's verdict on every message. Two
implementations: `relay.pika_publisher.PikaPublisher` (RabbitMQ, publisher confirms)
and `StubPublisher` here, an in-memory broker for tests of code that runs the relay.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

from cqrs_outbox.core.errors import BrokerUnavailable, MessageRejected


@dataclass(frozen=True)
class Message:
    """One event to publish: the exact body of its outbox row, under its routing key."""

    event_id: int
    routing_key: str
    body: str
    headers: dict[str, str] | None = None  # AMQP headers: trace context, signature


@dataclass(frozen=True)
class Outcome:
    """The broker's verdict on a batch. Every message not listed here was confirmed."""

    returned: dict[int, str] = field(default_factory=dict)  # event id -> reason (no route)
    refused: dict[int, str] = field(default_factory=dict)  # event id -> reason (nack)


class Publisher(abc.ABC):
    """Publish batches with the broker's confirmation, one batch in flight at a time."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Return whether the publisher is connected and can send."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Connect (again); raise BrokerUnavailable or ConfigurationError on failure."""

    @abc.abstractmethod
    def send(self, messages: Sequence[Message]) -> None:
        """Publish a batch without waiting for the broker's answer."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> Outcome | None:
        """Wait up to `timeout` seconds for the verdict on the batch sent last.

        Return None if the broker has not answered every message yet. Raise
        BrokerUnavailable if the connection broke (nothing of the batch counts as
        confirmed then) and MessageRejected if the broker closed the channel over a
        message it refuses.
        """

    def idle(self) -> None:  # noqa: B027 - most publishers have no housekeeping
        """Do the connection's housekeeping (heartbeats) while there is nothing to send."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; safe to call at any time."""


class StubPublisher(Publisher):
    """An in-memory broker that confirms at once; for tests.

    `messages` lists what was confirmed and routed, in order (a batch re-sent after an
    error appears twice, as on a real broker). Stage the broker's behaviour with:

    - `available = False`: connecting and sending raise BrokerUnavailable;
    - `unroutable`: routing keys the broker returns (no queue bound);
    - `nacked`: routing keys the broker refuses with a nack;
    - `max_body`: a body longer than this (characters) makes the broker close the
      channel, as RabbitMQ does over its max message size: the batch raises
      MessageRejected and nothing of it counts as confirmed.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.available = True
        self.unroutable: set[str] = set()
        self.nacked: set[str] = set()
        self.max_body: int | None = None
        self.connects = 0
        self._open = False
        self._flight: Sequence[Message] | None = None

    @property
    def is_open(self) -> bool:
        return self._open and self.available

    def connect(self) -> None:
        if not self.available:
            raise BrokerUnavailable("stub broker is unavailable")
        self._open = True
        self.connects += 1

    def send(self, messages: Sequence[Message]) -> None:
        if not self.is_open:
            self._open = False
            raise BrokerUnavailable("stub broker connection is closed")
        self._flight = list(messages)

    def wait(self, timeout: float) -> Outcome | None:
        flight, self._flight = self._flight, None
        if flight is None:
            return Outcome()
        if not self.available:
            self._open = False
            raise BrokerUnavailable("stub broker went away")
        returned, refused = {}, {}
        for message in flight:
            if self.max_body is not None and len(message.body) > self.max_body:
                self._open = False
                raise MessageRejected(f"406 message size {len(message.body)} is too large")
            if message.routing_key in self.nacked:
                refused[message.event_id] = "nacked by the broker"
            elif message.routing_key in self.unroutable:
                returned[message.event_id] = "312 NO_ROUTE"
            else:
                self.messages.append(message)
        return Outcome(returned=returned, refused=refused)

    def close(self) -> None:
        self._open = False
        self._flight = None

    def bodies(self, routing_key: str | None = None) -> list[str]:
        """Return the published bodies, optionally of one routing key only."""
        return [m.body for m in self.messages if routing_key in (None, m.routing_key)]
