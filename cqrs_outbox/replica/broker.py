"""The replica's RabbitMQ side with pika: `PikaTransport` for the consumer, and the
connection and publishing helpers it shares with the dead-letter commands.

pika's errors are translated by `cqrs_outbox.core.pika_errors`, the translation the
relay uses too: connection and channel losses become BrokerUnavailable; a refused login,
vhost or permission becomes AccessRefused, and a refused declaration ConfigurationError.

With several broker addresses (a cluster), the consumer connects to one node at a time
and moves to the next when a connection fails or breaks; the one-off connections of the
dead-letter commands take the first node that answers. A connection that receives
nothing for a whole heartbeat interval counts as broken, so a black-holed link is
noticed within one heartbeat.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pika
from pika import exceptions as pika_exceptions

from cqrs_outbox import conf
from cqrs_outbox.core import amqp, pika_errors, wire
from cqrs_outbox.core.errors import BrokerUnavailable, CQRSOutboxError
from cqrs_outbox.core.urls import BrokerAddress
from cqrs_outbox.replica import queue_info, topology
from cqrs_outbox.replica.transport import Delivery, Transport

logger = logging.getLogger(__name__)

# Twice the relay's: a worker reads its socket between batches, and applying one batch
# (a slow database, a lock wait) must not cost the connection.
HEARTBEAT = 2 * amqp.HEARTBEAT  # seconds
CONNECTION_NAME = "cqrs-outbox-replica"  # what the broker's tools show for the connection
DEFAULTS = amqp.connection_defaults(HEARTBEAT)  # the URL's query parameters beat these

ERRORS = (pika_exceptions.AMQPError, OSError)


def parameters(settings: conf.Settings,
               address: BrokerAddress | None = None) -> pika.ConnectionParameters:
    """Return pika connection parameters for `address` (default: the first broker node)."""
    return amqp.parameters(address or settings.broker, DEFAULTS, CONNECTION_NAME)


def connect(settings: conf.Settings, address: BrokerAddress | None = None) -> tuple[Any, Any]:
    """Open a connection and a channel with publisher confirms: to `address`, or to the
    first configured node that answers."""
    failure: tuple[CQRSOutboxError, BaseException] | None = None
    for node in (address,) if address else settings.addresses:
        try:
            connection = pika.BlockingConnection(parameters(settings, node))
            channel = connection.channel()
            channel.confirm_delivery()
            return connection, channel
        except ERRORS as exc:
            error = pika_errors.translate(exc, node, "connect")
            if pika_errors.is_fatal(error):
                raise error from exc
            failure = (error, exc)
    assert failure is not None
    raise failure[0] from failure[1]


def translate(exc: BaseException, what: str, precondition_hint: str = "") -> CQRSOutboxError:
    """Return `pika_errors.translate()` of a pika error, for the configured broker."""
    return pika_errors.translate(exc, conf.get().broker, what, precondition_hint)


def properties(original: Any = None, headers: dict | None = None,
               expiration: int | None = None) -> pika.BasicProperties:
    """Return persistent text/plain properties, keeping the original's ids and headers.

    `expiration` is in milliseconds.
    """
    merged = dict(getattr(original, "headers", None) or {})
    merged.update(headers or {})
    return pika.BasicProperties(
        content_type=wire.CONTENT_TYPE,
        delivery_mode=wire.DELIVERY_MODE_PERSISTENT,
        message_id=getattr(original, "message_id", None),
        correlation_id=getattr(original, "correlation_id", None),
        timestamp=getattr(original, "timestamp", None),
        headers=merged or None,
        expiration=None if expiration is None else str(max(0, int(expiration))),
    )


def send_to_queue(channel: Any, queue: str, body: bytes, props: pika.BasicProperties) -> None:
    """Publish `body` straight to `queue` (default exchange) and wait for the confirm."""
    try:
        channel.basic_publish(
            exchange="", routing_key=queue, body=body, properties=props, mandatory=True
        )
    except ERRORS as exc:
        raise translate(exc, f"publish to {queue}") from exc


def now_header() -> str:
    """Return the current UTC time for a header."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


class PikaTransport(Transport):
    """Consume the replica queue on RabbitMQ, one blocking connection per `open()`."""

    def __init__(self, settings: conf.Settings) -> None:
        self.settings = settings
        self.nodes = amqp.Nodes(settings.addresses)
        self._connection: Any = None
        self._channel: Any = None
        self._received: list[Delivery] = []
        self._silence = amqp.Silence(0)
        self._info: queue_info.QueueInfo | None = None

    def open(self, names: topology.Names, cqrs_ids: list[str], prefetch: int) -> None:
        self.close()
        address = self.nodes.current
        try:
            self._connection, self._channel = connect(self.settings, address)
        except BrokerUnavailable:
            self.nodes.failed()
            raise
        self._received = []
        self._silence = amqp.Silence(amqp.heartbeat_of(address, HEARTBEAT))
        self._guard(lambda: self._channel.basic_qos(prefetch_count=prefetch), "consume")
        self._guard(lambda: self._declare(names, cqrs_ids), "declare the replica queues",
                    topology.QUEUE_HINT)
        self._guard(lambda: self._channel.basic_consume(names.queue, self._on_message,
                                                        auto_ack=False), "consume")

    def queue_info(self) -> queue_info.QueueInfo | None:
        return self._info

    def receive(self, timeout: float) -> list[Delivery]:
        self._guard(lambda: self._connection.process_data_events(time_limit=timeout), "consume")
        self._silence.heard(amqp.received(self._connection))
        silent = self._silence.exceeded()
        if silent is not None:
            error = BrokerUnavailable(
                f"no byte from {self.nodes.current.safe_url} for {silent:.1f}s, over the "
                f"{self._silence.limit}s heartbeat: the link is down")
            amqp.abandon(self._connection, str(error))
            self._connection = self._channel = None
            self.nodes.failed()
            raise error
        received, self._received = self._received, []
        return received

    def ack(self, tag: int) -> None:
        self._guard(lambda: self._channel.basic_ack(delivery_tag=tag, multiple=True), "consume")

    def send(self, queue: str, body: bytes, properties: Any) -> None:
        self._guard(lambda: send_to_queue(self._channel, queue, body, properties),
                    f"publish to {queue}")

    def _declare(self, names: topology.Names, cqrs_ids: list[str]) -> None:
        kept = queue_info.foreign(self._connection, (names.queue, names.dead_letter_queue))
        topology.declare(self._channel, names, cqrs_ids, kept=kept)
        if self._info is None:
            version = amqp.server_version(self._connection)
            self._info = queue_info.read(self._connection, names.queue, version,
                                         kept.get(names.queue, ""))

    def _guard(self, call: Any, what: str, hint: str = "") -> None:
        """Run `call`; translate pika's errors, and move to the next node on a lost link."""
        try:
            call()
        except CQRSOutboxError as error:
            if isinstance(error, BrokerUnavailable):
                self.nodes.failed()
            raise
        except ERRORS as exc:
            error = pika_errors.translate(exc, self.nodes.current, what, hint)
            if isinstance(error, BrokerUnavailable):
                self.nodes.failed()
            raise error from exc

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is None:
            return
        try:
            if connection.is_open:
                connection.close()
        except ERRORS:
            logger.debug("Closing the broker connection failed; it is gone already")

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._received.append(Delivery(method.delivery_tag, method.routing_key, properties, body))
