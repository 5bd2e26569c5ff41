"""Find out, with AMQP alone, what kind of queue the replica consumes from.

AMQP has no request that returns a queue's arguments. A declaration that differs from an
existing queue is refused, though, and the refusal names the first argument that differs
with its current value. So the queue's arguments are read one refusal at a time: each
declaration, on a channel of its own, takes over the value the last refusal named, until
the broker accepts it (it then equals the queue's, and changes nothing). The broker logs
each refusal as a channel error; a queue with no argument but its type costs one or
none. What a policy sets (a delivery limit, a dead-letter target) cannot be read this
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
MAX_PROBES = 12  # declarations at most: one per argument the queue has, and the last
RABBITMQ_4_DEFAULT_LIMIT = 20  # deliveries, RabbitMQ 4's default for quorum queues
_DIFFERS = re.compile(
    r"inequivalent arg '(?P<name>[^']+)'.*current is "
    r"(?:(?P<none>none)|(?:the value )?'(?P<value>[^']*)'(?: of type '(?P<type>\w+)')?)$")
_TEXT_TYPES = ("longstr", "shortstr", "binary")


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
    arguments = arguments_of(connection, queue)
    if arguments is None:
        return QueueInfo(queue, "unknown", None, version, own_arguments)
    kind = str(arguments.get("x-queue-type") or "classic")
    limit = arguments.get("x-delivery-limit")
    return QueueInfo(queue, kind, limit if isinstance(limit, int) else None, version,
                     own_arguments)


def arguments_of(connection: Any, queue: str) -> dict[str, Any] | None:
    """Return the arguments `queue` was declared with, or None if they cannot be read."""
    probe: dict[str, Any] = {"x-queue-type": "classic"}  # what most queues are
    for _ in range(MAX_PROBES):
        refusal = _refusal(connection, queue, probe)
        if refusal is None:
            return probe
        found = _DIFFERS.search(refusal)
        if found is None:
            return None
        name = found.group("name")
        if found.group("none"):
            probe.pop(name, None)
        else:
            probe[name] = _typed(found.group("value"), found.group("type"), probe.get(name))
    return None


def _typed(text: str, kind: str | None, ours: Any) -> Any:
    """Return a refusal's current value as the Python value pika encodes alike."""
    if kind in _TEXT_TYPES or (kind is None and isinstance(ours, str)):
        return text
    if kind == "bool" or isinstance(ours, bool):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


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
