"""Find out, with AMQP alone, what kind of queue the replica consumes from.

AMQP has no request that returns a queue's arguments. A declaration that differs from an
existing queue is refused, though, and the refusal names the first argument that differs
with its current value. So each reading here is a declaration on a channel of its own,
made to be refused, and read from the refusal; the broker logs each refusal as a channel
error. What a policy sets (a delivery limit, a dead-letter target) cannot be read this
way, nor at all without RabbitMQ's management plugin; RabbitMQ 4 gives every quorum
queue a delivery limit of 20 unless a policy or an argument sets another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pika import exceptions as pika_exceptions

PRECONDITION_FAILED = 406
PROBE_LIMIT = 2**31 - 1  # a delivery limit nobody sets, declared to learn the real one
RABBITMQ_4_DEFAULT_LIMIT = 20  # deliveries, RabbitMQ 4's default for quorum queues
_CURRENT_TYPE = re.compile(r"inequivalent arg 'x-queue-type'.*current is '(\w+)'")
_CURRENT_LIMIT = re.compile(
    r"inequivalent arg 'x-delivery-limit'.*current is (?:the value )?(none|'(\d+)')")


@dataclass(frozen=True)
class QueueInfo:
    """What the consumer learnt about its queue when it first connected."""

    name: str
    kind: str  # 'classic', 'quorum', 'stream', or 'unknown'
    argument_limit: int | None  # a delivery limit set as the queue's argument
    version: str  # the broker's RabbitMQ version
    own_arguments: str = ""  # the broker's words when the queue has arguments of its own

    def delivery_limit(self) -> tuple[int | None, str]:
        """Return the delivery limit known to apply, and where it comes from."""
        if self.kind != "quorum":
            kind = "a classic queue" if self.kind == "classic" else f"a {self.kind} queue"
            return None, f"none ({kind} has none)"
        if self.argument_limit is not None:
            return self.argument_limit, f"{self.argument_limit} (the queue's argument)"
        if _major(self.version) >= 4:
            return RABBITMQ_4_DEFAULT_LIMIT, (f"{RABBITMQ_4_DEFAULT_LIMIT} (RabbitMQ 4's default, "
                                              "unless a policy sets another)")
        return None, "none as an argument (a policy may set one; AMQP cannot read policies)"


def foreign(connection: Any, queues: Iterable[str]) -> dict[str, str]:
    """Declare `queues` as django-cqrs does; return those that exist with arguments of
    their own, with the broker's words, instead of failing on them."""
    found = {}
    for queue in queues:
        refusal = _refusal(connection, queue, {})
        if refusal and "inequivalent arg" in refusal:
            found[queue] = refusal
        elif refusal:
            raise _Refused(refusal)
    return found


def read(connection: Any, queue: str, version: str, own_arguments: str = "") -> QueueInfo:
    """Return the type of `queue` and any delivery limit set as its argument."""
    refusal = _refusal(connection, queue, {"x-queue-type": "classic"})
    found = _CURRENT_TYPE.search(refusal or "")
    if found:
        kind = found.group(1)
    else:  # accepted, or refused over another argument after the type matched
        kind = "classic" if refusal is None or "inequivalent arg" in refusal else "unknown"
    limit = None
    if kind == "quorum":
        probe = {"x-queue-type": "quorum", "x-delivery-limit": PROBE_LIMIT}
        current = _CURRENT_LIMIT.search(_refusal(connection, queue, probe) or "")
        limit = int(current.group(2)) if current and current.group(2) else None
    return QueueInfo(queue, kind, limit, version, own_arguments)


class _Refused(pika_exceptions.ChannelClosedByBroker):
    def __init__(self, text: str) -> None:
        super().__init__(PRECONDITION_FAILED, text)


def _refusal(connection: Any, queue: str, arguments: dict) -> str | None:
    """Declare `queue` on a channel of its own; return the broker's refusal, or None."""
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True, exclusive=False, arguments=arguments or None)
    except pika_exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        return str(exc.reply_text)
    channel.close()
    return None


def _major(version: str) -> int:
    found = re.match(r"(\d+)", version or "")
    return int(found.group(1)) if found else 0
