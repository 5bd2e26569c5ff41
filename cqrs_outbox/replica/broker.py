"""The replica's RabbitMQ side with pika: `PikaTransport` for the consumer, and the
connection and publishing helpers it shares with the dead-letter commands.

pika's errors are translated by `cqrs_outbox.core.pika_errors`, the translation the
relay uses too: connection and channel losses become BrokerUnavailable; a refused login,
vhost or permission becomes AccessRefused, and a refused declaration ConfigurationError.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pika
from pika import exceptions as pika_exceptions

from cqrs_outbox import conf
from cqrs_outbox.core import pika_errors, wire
from cqrs_outbox.core.errors import CQRSOutboxError
from cqrs_outbox.replica import topology
from cqrs_outbox.replica.transport import Delivery, Transport

logger = logging.getLogger(__name__)

HEARTBEAT = 60  # seconds
BLOCKED_CONNECTION_TIMEOUT = 30  # seconds
SOCKET_TIMEOUT = 10  # seconds

ERRORS = (pika_exceptions.AMQPError, OSError)


def parameters(settings: conf.Settings) -> pika.URLParameters:
    """Return pika connection parameters for the configured broker."""
    params = pika.URLParameters(settings.broker.url)
    params.heartbeat = HEARTBEAT
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT
    params.socket_timeout = SOCKET_TIMEOUT
    params.connection_attempts = 1
    return params


def connect(settings: conf.Settings) -> tuple[Any, Any]:
    """Open a connection and a channel with publisher confirms."""
    try:
        connection = pika.BlockingConnection(parameters(settings))
        channel = connection.channel()
        channel.confirm_delivery()
    except ERRORS as exc:
        raise pika_errors.translate(exc, settings.broker, "connect") from exc
    return connection, channel


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
        self._connection: Any = None
        self._channel: Any = None
        self._received: list[Delivery] = []

    def open(self, names: topology.Names, cqrs_ids: list[str], prefetch: int) -> None:
        self.close()
        self._connection, self._channel = connect(self.settings)
        self._received = []
        try:
            self._channel.basic_qos(prefetch_count=prefetch)
        except ERRORS as exc:
            raise translate(exc, "consume") from exc
        try:
            topology.declare(self._channel, names, cqrs_ids)
        except ERRORS as exc:
            raise translate(exc, "declare the replica queues", topology.QUEUE_HINT) from exc
        try:
            self._channel.basic_consume(names.queue, self._on_message, auto_ack=False)
        except ERRORS as exc:
            raise translate(exc, "consume") from exc

    def receive(self, timeout: float) -> list[Delivery]:
        try:
            self._connection.process_data_events(time_limit=timeout)
        except ERRORS as exc:
            raise translate(exc, "consume") from exc
        received, self._received = self._received, []
        return received

    def ack(self, tag: int) -> None:
        try:
            self._channel.basic_ack(delivery_tag=tag, multiple=True)
        except ERRORS as exc:
            raise translate(exc, "consume") from exc

    def send(self, queue: str, body: bytes, properties: Any) -> None:
        send_to_queue(self._channel, queue, body, properties)

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
