"""django-cqrs's log sentences for what the replica does, word for word.

Teams alert on these lines and search logs for them. Where the replica meets a case
django-cqrs logs, our record opens with django-cqrs's sentence and adds what we know
after it (`line()`), so a filter written for django-cqrs's text matches ours. The
revision lines (lost, stale, duplicate) live with their rules in `revlog`.

Values that come from a message are made safe for one line (`one_line`): a hostile pk
or CQRS_ID cannot start a line of its own.
"""

from __future__ import annotations

import json
from typing import Any

from cqrs_outbox.core import wire
from cqrs_outbox.core.escape import one_line

VALUE_CHARS = 200  # characters of a pk, CQRS_ID or key quoted in a sentence
BODY_BYTES = 1000  # bytes of a raw body quoted in a sentence (django-cqrs quotes it all)
SERVICE_EXCEPTION = "CQRS service exception"


def line(sentence: str, detail: Any = "") -> str:
    """Return django-cqrs's `sentence`, then our `detail` on the same line."""
    detail = one_line(detail) if detail else ""
    return f"{sentence} {detail}" if detail else sentence


def _v(value: Any) -> str:
    return one_line(value, VALUE_CHARS)


def body(raw: Any) -> str:
    """Return a raw body as django-cqrs quotes it (`str()` of the bytes), cut if long."""
    if isinstance(raw, (bytes, bytearray)):
        cut = bytes(raw[:BODY_BYTES])
        return repr(cut) + ("..." if len(raw) > BODY_BYTES else "")
    return _v(raw)


# The replica manager: data a model cannot take, and writes the database refuses.


def required_fields_missing(cqrs_id: str) -> str:
    return f"Not all required CQRS fields are provided in data ({_v(cqrs_id)})."


def pk_missing(cqrs_id: str) -> str:
    return f"CQRS PK is not provided in data ({_v(cqrs_id)})."


def sync_fields_missing(cqrs_id: str) -> str:
    return f"CQRS sync fields are not provided in data ({_v(cqrs_id)})."


def bad_mapping(master_name: str, cqrs_id: str) -> str:
    return f"Bad master-replica mapping for {_v(master_name)} ({_v(cqrs_id)})."


def create_error(pk: Any, cqrs_id: str) -> str:
    return f"CQRS create error: pk = {_v(pk)} ({_v(cqrs_id)})."


def update_error(pk: Any, revision: Any, cqrs_id: str) -> str:
    return f"CQRS update error: pk = {_v(pk)}, cqrs_revision = {_v(revision)} ({_v(cqrs_id)})."


def delete_error(pk: Any, cqrs_id: str) -> str:
    return f"CQRS delete error: pk = {_v(pk)} ({_v(cqrs_id)})."


# The consumer: one message's way through.


def _about(pk: Any, cqrs_id: str, correlation_id: Any) -> str:
    return f"pk = {_v(pk)} ({_v(cqrs_id)}), correlation_id = {_v(correlation_id)}"


def received(pk: Any, cqrs_id: str, correlation_id: Any) -> str:
    return f"CQRS is received: {_about(pk, cqrs_id, correlation_id)}."


def applied(pk: Any, cqrs_id: str, correlation_id: Any) -> str:
    return f"CQRS is applied: {_about(pk, cqrs_id, correlation_id)}."


def failed(pk: Any, cqrs_id: str, correlation_id: Any, retries: int) -> str:
    return f"CQRS is failed: {_about(pk, cqrs_id, correlation_id)}, retries = {retries}."


def delayed(pk: Any, cqrs_id: str, correlation_id: Any, delay: Any, eta: Any) -> str:
    return (f"CQRS is delayed: {_about(pk, cqrs_id, correlation_id)}, delay = {_v(delay)} sec, "
            f"eta = {eta}.")


def write_error(signal_type: str, pk: Any, revision: Any, cqrs_id: str) -> str:
    return (f"CQRS {_v(signal_type)} error: pk = {_v(pk)}, cqrs_revision = {_v(revision)} "
            f"({_v(cqrs_id)}).")


def dead_letter(pk: Any, cqrs_id: str, correlation_id: Any) -> str:
    return f"CQRS is added to dead letter queue: {_about(pk, cqrs_id, correlation_id)}."


def not_parsed(raw: Any) -> str:
    return f"CQRS couldn't be parsed: {body(raw)}."


def key_missing(key: str, raw: Any) -> str:
    return f"CQRS couldn't proceed, {_v(key)} isn't found in body: {body(raw)}."


def bad_signal(signal_type: Any, cqrs_id: Any) -> str:
    return f'Bad signal type "{_v(signal_type)}" for CQRS_ID "{_v(cqrs_id)}".'


def no_model(cqrs_id: Any) -> str:
    return f"No model with such CQRS_ID: {_v(cqrs_id)}."


def model_not_found(cqrs_id: Any) -> str:
    return f"Model for cqrs_id {_v(cqrs_id)} is not found."


def for_body(raw: bytes) -> str:
    """Return django-cqrs's sentence for a body it refuses before any model sees it.

    That is a body that is not JSON, lacks a key django-cqrs requires (the first one
    missing, in `wire.REQUIRED_KEYS` order), or has an unknown signal type; '' for any
    other body. Only called on a body already refused, within the size limit.
    """
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return not_parsed(raw)
    found = parsed if isinstance(parsed, dict) else {}
    for key in wire.REQUIRED_KEYS:
        if key not in found:
            return key_missing(key, raw)
    if found["signal_type"] not in wire.SIGNAL_TYPES:
        return bad_signal(found["signal_type"], found["cqrs_id"])
    return ""
