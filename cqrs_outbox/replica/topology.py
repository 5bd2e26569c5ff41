"""Name and declare the replica's exchange, queues and bindings, as django-cqrs does.

The work queue and the dead-letter queue are declared durable and without arguments,
exactly like django-cqrs declares them, so either consumer can start first. Their type
and limits come from the virtual host's default queue type and from policies (see
docs/operations.md, RabbitMQ clusters). A queue an operator declared beforehand with
arguments of its own is used as it is: only checked to exist (`kept`).
The delay queue is ours alone: messages wait in it for their per-message TTL and then
dead-letter through the default exchange straight back to the work queue.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pika import exceptions as pika_exceptions

from cqrs_outbox import conf
from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import ConfigurationError

DELAY_SUFFIX = ".delay"
PRECONDITION_FAILED = 406
QUEUE_HINT = (
    "A queue of that name exists with other arguments; delete it or pick another "
    "CQRS['queue']. A quorum queue declared beforehand works when its virtual host has "
    "the default queue type quorum (rabbitmqctl add_vhost NAME --default-queue-type quorum)."
)
_INEQUIVALENT = re.compile(r"inequivalent arg '(\w+)'.*current is '([^']*)'")


@dataclass(frozen=True)
class Names:
    """The broker objects of one replica service."""

    exchange: str
    queue: str
    dead_letter_queue: str
    delay_queue: str


def names(settings: conf.Settings) -> Names:
    """Return the names the settings give; raise ConfigurationError without a queue."""
    queue = settings.queue
    if not queue:
        raise ConfigurationError("CQRS['queue'] is not set: name this replica service's queue.")
    return Names(
        exchange=settings.exchange,
        queue=queue,
        dead_letter_queue=settings.replica.dead_letter_queue,
        delay_queue=queue + DELAY_SUFFIX,
    )


def bindings(names: Names, cqrs_ids: list[str]) -> list[tuple[str, str]]:
    """Return (queue, routing key) pairs: broadcasts, direct SYNCs and dead letters."""
    pairs = []
    for cqrs_id in cqrs_ids:
        pairs.append((names.queue, contract.routing_key(cqrs_id)))
        pairs.append((names.queue, contract.routing_key(cqrs_id, names.queue)))
        dead = contract.routing_key(cqrs_id, names.dead_letter_queue)
        pairs.append((names.dead_letter_queue, dead))
    return pairs


def declare(channel: Any, names: Names, cqrs_ids: list[str], *,
            kept: Collection[str] = ()) -> None:
    """Declare the exchange, the three queues and the bindings on a pika channel.

    Queues named in `kept` exist with arguments of their own: they are only checked.
    """
    try:
        channel.exchange_declare(exchange=names.exchange, exchange_type="topic", durable=True)
    except pika_exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        raise exchange_refused(names.exchange, exc.reply_text) from exc
    for queue in (names.queue, names.dead_letter_queue):
        channel.queue_declare(queue, durable=True, exclusive=False, passive=queue in kept)
    channel.queue_declare(names.delay_queue, durable=True, arguments=delay_arguments(names))
    for queue, key in bindings(names, cqrs_ids):
        channel.queue_bind(exchange=names.exchange, queue=queue, routing_key=key)


def exchange_refused(exchange: str, reply_text: str) -> ConfigurationError:
    """Return the error of an exchange that exists, but is no durable topic exchange."""
    found = _INEQUIVALENT.search(reply_text or "")
    if found and found.group(1) == "type":
        what = f"exists as a {found.group(2)} exchange"
    elif found:
        what = f"exists with {found.group(1)} = {found.group(2)}"
    else:
        what = "exists with other properties"
    return ConfigurationError(
        f"CQRS['exchange'] names exchange {exchange!r}, which {what}; cqrs-outbox and "
        "django-cqrs need a durable topic exchange. Set CQRS['exchange'] to another name "
        f"(default {contract.DEFAULT_EXCHANGE!r}) on every service, or delete exchange "
        f"{exchange!r} so that it is declared afresh."
    )


def delay_arguments(names: Names) -> dict:
    """Return the delay queue's arguments: expired messages go back to the work queue."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": names.queue}


def direct_routing_key(names: Names, cqrs_id: str) -> str:
    """Return the routing key of a SYNC aimed at this queue alone."""
    return contract.routing_key(cqrs_id, names.queue)
