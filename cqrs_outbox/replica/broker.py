"""Connect to RabbitMQ with pika and publish the replica's own messages (retries, dead letters).

pika's errors are translated here: connection and channel losses become
BrokerUnavailable, a refused declaration becomes ConfigurationError.
"""

from __future__ import annotations

import datetime
from typing import Any

import pika
from pika import exceptions as pika_exceptions

from cqrs_outbox import conf
from relay import contract
from relay.exceptions import BrokerUnavailable, ConfigurationError, MessageRejected

HEARTBEAT = 60  # seconds
BLOCKED_CONNECTION_TIMEOUT = 30  # seconds
SOCKET_TIMEOUT = 10  # seconds
PRECONDITION_FAILED = 406

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
        raise BrokerUnavailable(f"cannot reach {settings.broker.safe_url}: {exc!r}") from exc
    return connection, channel


def translate(exc: BaseException, what: str) -> Exception:
    """Return our error for a pika error raised while doing `what`."""
    if isinstance(exc, pika_exceptions.ChannelClosedByBroker) and (
        exc.reply_code == PRECONDITION_FAILED
    ):
        return ConfigurationError(
            f"the broker refused to {what}: {exc.reply_text}. A queue of that name exists with "
            "other arguments; delete it or pick another CQRS['queue']."
        )
    if isinstance(exc, pika_exceptions.UnroutableError):
        return MessageRejected(f"the broker could not route a message while trying to {what}")
    return BrokerUnavailable(f"broker lost while trying to {what}: {exc!r}")


def properties(original: Any = None, headers: dict | None = None,
               expiration: int | None = None) -> pika.BasicProperties:
    """Return persistent text/plain properties, keeping the original's ids and headers.

    `expiration` is in milliseconds.
    """
    merged = dict(getattr(original, "headers", None) or {})
    merged.update(headers or {})
    return pika.BasicProperties(
        content_type=contract.CONTENT_TYPE,
        delivery_mode=contract.DELIVERY_MODE_PERSISTENT,
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
