"""Connect to RabbitMQ with pika and publish the replica's own messages (retries, dead letters).

pika's errors are translated by `cqrs_outbox.core.pika_errors`, the translation the relay uses too:
connection and channel losses become BrokerUnavailable; a refused login, vhost or
permission becomes AccessRefused, and a refused declaration ConfigurationError.
"""

from __future__ import annotations

import datetime
from typing import Any

import pika
from pika import exceptions as pika_exceptions

from cqrs_outbox import conf
from cqrs_outbox.core import pika_errors, wire
from cqrs_outbox.core.errors import CQRSOutboxError

HEARTBEAT = 60  # seconds
BLOCKED_CONNECTION_TIMEOUT = 30  # seconds
SOCKET_TIMEOUT = 10  # seconds

# Header names the replica adds to what it sends on.
REASON_HEADER = "cqrs-reason"
ROUTING_KEY_HEADER = "cqrs-routing-key"
QUEUE_HEADER = "cqrs-queue"
FAILED_AT_HEADER = "cqrs-failed-at"

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
    """Return our error for a pika error raised while doing `what`."""
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
