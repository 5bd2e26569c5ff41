"""Publishers: put a batch of outbox events on the broker and learn what it made of them.

`Publisher` is the interface the engine drives: `send()` a batch without waiting (and
perhaps another one after it), do other work, then `wait()` for the broker's verdict on
every message of the oldest batch not yet answered. Two
implementations: `relay.pika_publisher.PikaPublisher` (RabbitMQ, publisher confirms)
and `StubPublisher` here, an in-memory broker for tests of code that runs the relay.
"""

from __future__ import annotations

import abc
import time
from collections import deque
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
    """The broker's verdict on a batch. Every message not listed here was confirmed.

    A nack says the broker could not take a message now (a quorum queue without a
    leader, a channel opened during an election, a full queue); a refusal says this
    message can never go (it could not be encoded).
    """

    returned: dict[int, str] = field(default_factory=dict)  # event id -> reason (no route)
    refused: dict[int, str] = field(default_factory=dict)  # event id -> reason
    nacked: dict[int, str] = field(default_factory=dict)  # event id -> reason (nack)


class Publisher(abc.ABC):
    """Publish batches with the broker's confirmation; several batches may be in flight,
    and their verdicts come back in the order they were sent."""

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
        """Wait up to `timeout` seconds for the verdict on the oldest batch in flight.

        Return None if the broker has not answered every message of it yet; return an
        empty Outcome if nothing is in flight. Raise BrokerUnavailable if the
        connection broke and MessageRejected if the broker closed the channel over a
        message it refuses: nothing still in flight counts as confirmed then.
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
    - `nacking_connections`: the next this many connections nack every message, as a
      RabbitMQ channel opened during a quorum queue's leader election does;
    - `max_body`: a body longer than this (characters) makes the broker close the
      channel, as RabbitMQ does over its max message size: waiting raises
      MessageRejected and nothing still in flight counts as confirmed;
    - `silent = True`: the broker never answers, so `wait()` returns None.

    `sent_in_order` lists every message handed to `send`, in the order sent, whatever
    the broker answered. `most_in_flight` is the largest number of batches that were
    sent and not yet answered at once.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.sent_in_order: list[Message] = []
        self.available = True
        self.unroutable: set[str] = set()
        self.nacked: set[str] = set()
        self.nacking_connections = 0
        self.max_body: int | None = None
        self.silent = False
        self.connects = 0
        self.most_in_flight = 0
        self._open = False
        self._nacking = False
        self._flights: deque[list[Message]] = deque()

    @property
    def is_open(self) -> bool:
        return self._open and self.available

    def connect(self) -> None:
        if not self.available:
            raise BrokerUnavailable("stub broker is unavailable")
        self._open = True
        self.connects += 1
        self._nacking = self.nacking_connections > 0
        self.nacking_connections = max(0, self.nacking_connections - 1)

    def send(self, messages: Sequence[Message]) -> None:
        if not self.is_open:
            self._open = False
            raise BrokerUnavailable("stub broker connection is closed")
        self._flights.append(list(messages))
        self.sent_in_order.extend(messages)
        self.most_in_flight = max(self.most_in_flight, len(self._flights))

    def wait(self, timeout: float) -> Outcome | None:
        if not self._flights:
            return Outcome()
        if not self.available:
            self.close()
            raise BrokerUnavailable("stub broker went away")
        if self.silent:
            time.sleep(timeout)  # as long as a real broker that never answers keeps us
            return None
        flight = self._flights.popleft()
        returned, nacked = {}, {}
        for message in flight:
            if self.max_body is not None and len(message.body) > self.max_body:
                self.close()
                raise MessageRejected(f"406 message size {len(message.body)} is too large")
            if self._nacking or message.routing_key in self.nacked:
                nacked[message.event_id] = "nacked by the broker"
            elif message.routing_key in self.unroutable:
                returned[message.event_id] = "312 NO_ROUTE"
            else:
                self.messages.append(message)
        return Outcome(returned=returned, nacked=nacked)

    def close(self) -> None:
        self._open = False
        self._flights.clear()

    def bodies(self, routing_key: str | None = None) -> list[str]:
        """Return the published bodies, optionally of one routing key only."""
        return [m.body for m in self.messages if routing_key in (None, m.routing_key)]
