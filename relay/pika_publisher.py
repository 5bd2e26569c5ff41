"""Publish to RabbitMQ with pika: publisher confirms, mandatory flag, returned messages.

A `SelectConnection` driven by the caller's thread: `send()` writes a whole batch to the
socket and returns at once, so the relay can settle the previous batch, read the next
and even send it while the broker persists this one; `wait()` then runs the I/O loop
until every message of the oldest batch in flight is acknowledged. Delivery tags run on
across batches, so each batch knows its own range of tags; a `multiple` ack may cover
the end of one batch and the start of the next. Confirms also say which message the
broker refused (a nack), which an AMQP transaction cannot.

Several addresses (a cluster's nodes) are tried in turn: a connection that fails or
breaks moves the next attempt to the next node. A link that goes silent for a whole
heartbeat interval counts as broken, so a black-holed connection is noticed within
one heartbeat rather than after TCP gives up.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.exceptions

from cqrs_outbox.core import amqp, contract, pika_errors, wire
from cqrs_outbox.core.errors import BrokerUnavailable
from cqrs_outbox.core.urls import BrokerAddress
from relay.publisher import Message, Outcome, Publisher

logger = logging.getLogger(__name__)

HEARTBEAT = amqp.HEARTBEAT  # seconds between AMQP heartbeats
CONNECT_TIMEOUT = amqp.CONNECT_TIMEOUT  # seconds to open connection, channel and exchange
CLOSE_TIMEOUT = 2.0  # seconds to wait for a clean close
WRITE_CHUNK = 128 * 1024  # bytes per write to the socket when a batch is sent
CONNECTION_NAME = "cqrs-outbox-relay"  # what the broker's tools show for the connection

EXCHANGE_HINT = (
    "The exchange must be a durable topic exchange: pick another name for it, or delete "
    "the existing exchange so that it is declared afresh."
)


class _Flight:
    """A batch in flight: its delivery tags still waiting, and what came back."""

    def __init__(self, first_tag: int) -> None:
        self.first_tag = first_tag
        self.ids: list[int] = []  # event ids in tag order, from first_tag on
        self.members: set[int] = set()  # the same ids, to place a returned message
        self.waiting: set[int] = set()
        self.returned: dict[int, str] = {}
        self.refused: dict[int, str] = {}  # never sent: it could not be encoded
        self.nacked: dict[int, str] = {}

    def owns(self, event_id: int) -> bool:
        return event_id in self.members

    def confirm(self, tag: int, multiple: bool, nack: bool) -> None:
        if tag < self.first_tag:
            return  # an answer to an earlier batch only
        tags = [t for t in self.waiting if t <= tag] if multiple else [tag]
        for t in tags:
            self.waiting.discard(t)
            if nack and self.first_tag <= t < self.first_tag + len(self.ids):
                self.nacked[self.ids[t - self.first_tag]] = "nacked by the broker"


class PikaPublisher(Publisher):
    """Publish to a durable topic exchange on RabbitMQ, with publisher confirms."""

    def __init__(
        self,
        addresses: BrokerAddress | Sequence[BrokerAddress],
        exchange: str = contract.DEFAULT_EXCHANGE,
        *,
        heartbeat: int = HEARTBEAT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.nodes = amqp.Nodes(addresses)
        self.exchange = exchange
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self._connection: Any = None
        self._channel: Any = None
        self._ready = False
        self._closing = False
        self._error: Exception | None = None
        self._flights: deque[_Flight] = deque()  # oldest first
        self._next_tag = 1
        self._silence = amqp.Silence(0)
        self._last_node: BrokerAddress | None = None

    @property
    def address(self) -> BrokerAddress:
        """Return the address of the node connected to, or tried next."""
        return self.nodes.current

    # -- Publisher ------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._ready and self._error is None

    def connect(self) -> None:
        self.close()
        self._ready, self._closing, self._error, self._next_tag = False, False, None, 1
        parameters = self._parameters()
        # pika may try a node several times (the URL's connection_attempts) before it fails.
        budget = parameters.connection_attempts * (
            parameters.stack_timeout + parameters.retry_delay)
        self._connection = pika.SelectConnection(
            parameters,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        if not self._pump(lambda: self._ready, max(self.connect_timeout, budget)):
            self._error = BrokerUnavailable(f"no answer from {self.address.safe_url} within "
                                            f"{max(self.connect_timeout, budget):.0f}s")
        self._raise_error()
        self._silence = amqp.Silence(amqp.heartbeat_of(self.address, self.heartbeat))
        # Which node of several took the connection is worth a line when it changes.
        moved = len(self.nodes) > 1 and self._last_node != self.address
        self._last_node = self.address
        logger.log(logging.INFO if moved else logging.DEBUG, "connected to broker node %s",
                   self.address.safe_url)

    def send(self, messages: Sequence[Message]) -> None:
        if not self.is_open:
            raise self._error or BrokerUnavailable(f"not connected to {self.address.safe_url}")
        flight = _Flight(self._next_tag)
        self._flights.append(flight)
        for message in messages:
            self._publish(flight, message)
        self._coalesce()
        self._pump(lambda: False, 0)  # one turn of the loop writes the batch to the socket
        self._check_link()
        self._raise_error()

    def wait(self, timeout: float) -> Outcome | None:
        if not self._flights:
            return Outcome()
        flight = self._flights[0]
        self._pump(lambda: not flight.waiting, timeout)
        if flight.waiting:
            self._check_link()
        self._raise_error()
        if flight.waiting:
            return None
        self._flights.popleft()
        return Outcome(returned=flight.returned, refused=flight.refused, nacked=flight.nacked)

    def idle(self) -> None:
        if self._connection is not None:
            self._pump(lambda: False, 0)
            self._check_link()
            self._raise_error()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        self._ready, self._channel = False, None
        self._flights.clear()
        if connection is None:
            return
        self._closing = True
        try:
            if not (connection.is_closing or connection.is_closed):
                connection.close()
            self._drive(connection, lambda: connection.is_closed, CLOSE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a broken connection may fail to close
            logger.debug("closing the broker connection failed: %s", exc)
        finally:
            connection.ioloop.close()

    # -- publishing -----------------------------------------------------------------

    def _publish(self, flight: _Flight, message: Message) -> None:
        properties = pika.BasicProperties(
            content_type=wire.CONTENT_TYPE,
            delivery_mode=wire.DELIVERY_MODE_PERSISTENT,
            message_id=str(message.event_id),
            headers=message.headers,
        )
        try:
            self._channel.basic_publish(
                self.exchange,
                message.routing_key,
                message.body.encode(),
                properties,
                mandatory=True,
            )
        except (pika.exceptions.ShortStringTooLong, ValueError, TypeError) as exc:
            # Never left this process: refuse it here, without a delivery tag.
            flight.refused[message.event_id] = f"cannot be encoded: {type(exc).__name__}"
            return
        flight.ids.append(message.event_id)
        flight.members.add(message.event_id)
        flight.waiting.add(self._next_tag)
        self._next_tag += 1

    def _coalesce(self) -> None:
        """Join the frames pika queued for this batch into a few large writes.

        pika queues each frame of a message (method, header, body) as a buffer of its own
        and sends each with a system call of its own: three per message. Joined into
        chunks of WRITE_CHUNK bytes, a batch of 500 costs a few calls, and the broker
        reads full segments. The buffer queue is pika's transport's own; where a pika
        version keeps it elsewhere, nothing is joined and pika writes as it always did.
        """
        transport = getattr(self._connection, "_transport", None)
        buffers = getattr(transport, "_tx_buffers", None)
        if buffers is None or len(buffers) < 2:
            return
        chunks, chunk, size = [], [], 0
        for data in buffers:
            chunk.append(data)
            size += len(data)
            if size >= WRITE_CHUNK:
                chunks.append(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            chunks.append(b"".join(chunk))
        buffers.clear()
        buffers.extend(chunks)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = isinstance(method, pika.spec.Basic.Nack)
        for flight in self._flights:
            flight.confirm(method.delivery_tag, method.multiple, nack)
        if self._flights and not self._flights[0].waiting:
            self._stop_loop()  # the oldest batch, the one `wait()` is after, is answered

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        if not (properties.message_id or "").isdigit():
            return
        event_id = int(properties.message_id)
        reason = f"{method.reply_code} {method.reply_text}"
        # A return comes before the message's ack, so its batch is still in flight.
        for flight in self._flights:
            if flight.owns(event_id):
                flight.returned[event_id] = reason
                return

    # -- connection lifecycle -------------------------------------------------------

    def _parameters(self) -> pika.ConnectionParameters:
        defaults = amqp.connection_defaults(self.heartbeat, self.connect_timeout)
        return amqp.parameters(self.address, defaults, CONNECTION_NAME)

    def _check_link(self) -> None:
        """Fail the connection when the broker has sent nothing for a heartbeat interval."""
        if self._connection is None or not self._ready:
            return
        self._silence.heard(amqp.received(self._connection))
        silent = self._silence.exceeded()
        if silent is not None:
            error = BrokerUnavailable(
                f"no byte from {self.address.safe_url} for {silent:.1f}s, over the "
                f"{self._silence.limit}s heartbeat: the link is down")
            self._fail(error)
            amqp.abandon(self._connection, str(error))  # no closing handshake on a dead link

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._declare())

    def _declare(self) -> None:
        self._channel.exchange_declare(
            self.exchange, "topic", durable=True, callback=lambda _frame: self._on_ready()
        )

    def _on_ready(self) -> None:
        self._ready = True
        self._stop_loop()

    def _on_open_error(self, connection: Any, error: BaseException) -> None:
        self._fail(pika_errors.translate(error, self.address, "connect"))

    def _on_closed(self, connection: Any, reason: BaseException) -> None:
        self._ready = False
        if not self._closing:
            self._fail(pika_errors.translate(reason, self.address, "stay connected"))
        connection.ioloop.stop()  # also when close() already let go of the connection

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        self._ready = False
        if self._closing:
            return
        if self._channel is channel and not self._error:
            if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
                self._fail(self._channel_error(reason))
            else:  # the connection under it went away
                where = self.address.safe_url
                text = pika_errors.text(reason)
                self._fail(BrokerUnavailable(f"connection to {where} lost: {text}"))
        connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            self._closing = True
            connection.close()

    def _channel_error(self, reason: Any) -> Exception:
        publishing = bool(self._flights)
        what = "publish" if publishing else f"declare exchange {self.exchange!r}"
        return pika_errors.translate(reason, self.address, what, EXCHANGE_HINT,
                                     publishing=publishing)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._stop_loop()

    def _raise_error(self) -> None:
        if self._error is not None:
            error = self._error
            self.close()
            self._error = error
            if isinstance(error, BrokerUnavailable):
                self.nodes.failed()  # the next attempt goes to the next node
            raise error

    # -- driving the I/O loop from the caller's thread --------------------------------

    def _pump(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run the I/O loop until `done()`, an error, or `timeout`; return `done()`."""
        if self._connection is None:
            return done()
        return self._drive(self._connection, lambda: done() or self._error is not None, timeout)

    @staticmethod
    def _drive(connection: Any, done: Callable[[], bool], timeout: float) -> bool:
        loop = connection.ioloop
        deadline = time.monotonic() + timeout
        while True:
            if done():
                return True
            timer = loop.call_later(max(0.0, deadline - time.monotonic()), loop.stop)
            try:
                loop.start()
            finally:
                loop.remove_timeout(timer)
            if time.monotonic() >= deadline:
                return done()

    def _stop_loop(self) -> None:
        if self._connection is not None:
            self._connection.ioloop.stop()
