"""Retry, dump or purge the replica's dead letters (the `cqrs_dead_letters` command)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from cqrs_outbox import conf
from cqrs_outbox.core import contract, wire
from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import broker, signatures, topology, transport

# Dead letters come back with a fresh `expires` of this many seconds, as in django-cqrs.
RETRY_MESSAGE_TTL = contract.RETRY_MESSAGE_TTL
DROPPED_HEADERS = (transport.REASON_HEADER, transport.FAILED_AT_HEADER)
ID_CHARS = 100  # characters of an id written per letter

Write = Callable[[str], None]


def retry(write: Write, verbose: bool = False) -> int:
    """Send every dead letter back to the work queue with `retries` at 0; return how many.

    Writes the count and each letter's ids; the bodies, which may hold personal data,
    only when `verbose`. A body that cannot be renewed (not a JSON object: not JSON, not
    UTF-8, too deep or too large) goes back unchanged, and its line says why.
    """
    with _channel() as (channel, names, total):
        write(f"Total dead letters: {total}")
        done = 0
        for method, props, body in _take(channel, names, total):
            done += 1
            headers = {k: v for k, v in (props.headers or {}).items() if k not in DROPPED_HEADERS}
            headers, fresh, why = _renewed(headers, body, names.queue)
            note = f": sent back unchanged, {why}" if why else ""
            write(f"Retrying: {done}/{total} {describe(props, body)}{note}")
            out = broker.properties(None, headers)
            out.message_id, out.correlation_id = props.message_id, props.correlation_id
            broker.send_to_queue(channel, names.queue, fresh, out)
            channel.basic_ack(method.delivery_tag)
            if verbose:
                write(one_line(fresh.decode("utf-8", "replace")))
        write(f"Retried {done} dead letters.")
        return done


def _renewed(headers: dict, body: bytes, queue: str) -> tuple[dict, bytes, str]:
    """Return (headers, body, why it is unchanged or '') of a letter sent back."""
    try:
        signed = signatures.reset_for_retry(headers, body, RETRY_MESSAGE_TTL, queue)
        if signed:  # the signed body goes back byte for byte
            return (*signed, "")
        if wire.json_object(body) is None:
            return headers, body, _unreadable(body)
        return headers, wire.reset_for_retry(body, RETRY_MESSAGE_TTL), ""
    except Exception as exc:  # whatever the body holds, the letters behind it go on
        return headers, body, f"it could not be read ({type(exc).__name__})"


def _unreadable(body: bytes) -> str:
    try:
        wire.decode(body)
    except BadMessage as exc:
        return str(exc)
    return "the body is not a JSON object"


def describe(props: Any, body: bytes) -> str:
    """Return a dead letter's ids for one line: message id, and cqrs_id:pk if readable."""
    parts = [f"message {one_line(props.message_id, ID_CHARS)}"] if props.message_id else []
    parsed = wire.json_object(body)
    if parsed is not None and "cqrs_id" in parsed:
        key = f"{parsed.get('cqrs_id')}:{parsed.get('instance_pk')}"
        parts.append(one_line(key, ID_CHARS))
    return " ".join(parts) or "(no ids)"


def dump(write: Write, with_reasons: bool = False) -> int:
    """Write every dead letter's body (or body and reason) and leave them queued."""
    with _channel() as (channel, names, total):
        count = 0
        for _, props, body in _take(channel, names, total):
            count += 1
            text = body.decode("utf-8", "replace")
            if with_reasons:
                reason = transport.reason_of(props.headers)
                write(json_line({"reason": reason, "body": text}))
            else:
                # Control characters escaped, as in the consumer's log lines: a body must
                # not move the cursor or rewrite the operator's screen.
                write(one_line(text))
        return count  # closing the channel puts the unacknowledged letters back


_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029]")


def json_line(value: Any) -> str:
    """Return `value` as JSON on one line with every control character escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def purge(write: Write) -> int:
    """Delete every dead letter; return how many there were."""
    with _channel() as (channel, names, total):
        write(f"Total dead letters: {total}")
        if total:
            channel.queue_purge(names.dead_letter_queue)
            write("Purged")
        return total


@contextlib.contextmanager
def _channel() -> Iterator[tuple[Any, topology.Names, int]]:
    """Open a connection, declare the topology and count the dead letters."""
    settings = conf.get()
    names = topology.names(settings)
    connection, channel = broker.connect(settings)
    try:
        try:
            topology.declare(channel, names, sorted(ReplicaRegistry.models))
            declared = channel.queue_declare(names.dead_letter_queue, passive=True)
        except broker.ERRORS as exc:
            raise broker.translate(exc, "declare the replica queues", topology.QUEUE_HINT) from exc
        yield channel, names, declared.method.message_count
    finally:
        try:
            if connection.is_open:
                connection.close()
        except broker.ERRORS:
            pass


def _take(channel: Any, names: topology.Names, total: int) -> Iterator[tuple[Any, Any, bytes]]:
    for _ in range(total):
        try:
            method, props, body = channel.basic_get(names.dead_letter_queue, auto_ack=False)
        except broker.ERRORS as exc:
            raise broker.translate(exc, "read the dead-letter queue") from exc
        if method is None:
            return
        yield method, props, body
