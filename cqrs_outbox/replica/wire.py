"""Decode and validate incoming message bodies; encode the ones sent on for retries.

Readers ignore keys they do not know, as the wire format requires. Every problem is a
`BadMessage` whose text names the key at fault, so the dead-letter reason says exactly
what to fix. A body over the size limit is refused before it is parsed, and one nested
deeper than the depth limit is refused before anything walks it, so no body can run
the worker out of memory or stack.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from relay import contract
from relay.escape import one_line
from relay.exceptions import BadMessage

# Keys django-cqrs itself refuses a message without; the others have defaults.
REQUIRED_KEYS = ("signal_type", "cqrs_id", "instance_data", "instance_pk")
REVISION_KEY = "cqrs_revision"
UPDATED_KEY = "cqrs_updated"
PREVIEW_CHARS = 200  # characters of a bad body quoted in logs
MAX_BODY_SIZE = 16 * 1024 * 1024  # bytes, the default of CQRS['replica']['max_body_size']
MAX_DEPTH = 64  # levels of arrays and objects, the default of CQRS['replica']['max_depth']


def decode(body: bytes, max_size: int = MAX_BODY_SIZE,
           max_depth: int = MAX_DEPTH) -> contract.Envelope:
    """Parse a raw body into an envelope; raise BadMessage saying what is wrong."""
    if len(body) > max_size:
        raise BadMessage(
            f"body is {len(body)} bytes, over the limit of {max_size} bytes "
            "(CQRS['replica']['max_body_size'])"
        )
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        parsed = json.loads(text)
    except RecursionError as exc:
        raise _too_deep(max_depth) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage(f"body is not JSON: {one_line(exc)}") from exc
    if depth_over(parsed, max_depth):
        raise _too_deep(max_depth)
    return validate(parsed)


def depth_over(value: Any, limit: int) -> bool:
    """Tell whether arrays and objects nest deeper than `limit` levels (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep(limit: int) -> BadMessage:
    return BadMessage(
        f"body nests arrays and objects deeper than the limit of {limit} levels "
        "(CQRS['replica']['max_depth'])"
    )


def validate(body: Any) -> contract.Envelope:
    """Check a decoded body and return it as an envelope; raise BadMessage naming the key."""
    if not isinstance(body, dict):
        raise BadMessage(f"body must be a JSON object, got {_kind(body)}")
    for key in REQUIRED_KEYS:
        if key not in body:
            raise BadMessage(f"key {key!r} is missing")
    signal_type = body["signal_type"]
    if signal_type not in contract.SIGNAL_TYPES:
        raise BadMessage(
            f"signal_type must be one of {', '.join(contract.SIGNAL_TYPES)}, "
            f"got {_short(signal_type)}"
        )
    _expect(body, "cqrs_id", str)
    if not body["cqrs_id"]:
        raise BadMessage("cqrs_id must not be empty")
    _expect(body, "instance_data", dict)
    pk = body["instance_pk"]
    if not (isinstance(pk, str) or _is_int(pk)):
        raise BadMessage(f"instance_pk must be a string or an integer, got {_kind_of(pk)}")
    _expect_optional(body, "previous_data", dict)
    _expect_optional(body, "meta", dict)
    _expect_optional(body, "expires", str)
    retries = body.get("retries")
    if retries is not None and (not _is_int(retries) or retries < 0):
        raise BadMessage(f"retries must be a non-negative integer, got {_short(retries)}")
    if body.get("expires") is not None:
        expires_at(body["expires"])
    known = set(contract.ENVELOPE_KEYS)
    return contract.Envelope(
        signal_type=signal_type,
        cqrs_id=body["cqrs_id"],
        instance_data=body["instance_data"],
        instance_pk=body["instance_pk"],
        previous_data=body.get("previous_data"),
        correlation_id=body.get("correlation_id"),
        retries=retries or 0,
        expires=body.get("expires"),
        meta=body.get("meta"),
        extra={k: v for k, v in body.items() if k not in known},
    )


def revision(data: dict) -> int:
    """Return `instance_data.cqrs_revision`; raise BadMessage if it is missing or not an int."""
    if REVISION_KEY not in data:
        raise BadMessage(f"instance_data.{REVISION_KEY} is missing")
    value = data[REVISION_KEY]
    if not _is_int(value) or value < 0:
        raise BadMessage(
            f"instance_data.{REVISION_KEY} must be an integer >= 0, got {_short(value)}"
        )
    if UPDATED_KEY not in data:
        raise BadMessage(f"instance_data.{UPDATED_KEY} is missing")
    return value


def expires_at(value: str | None) -> datetime.datetime | None:
    """Parse an `expires` value (ISO-8601, naive means UTC); raise BadMessage if unreadable."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise BadMessage(f"expires must be an ISO-8601 datetime or null, got {_short(value)}")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def is_expired(envelope: contract.Envelope, now: datetime.datetime | None = None) -> bool:
    """Tell whether the envelope's `expires` moment has passed."""
    moment = expires_at(envelope.expires)
    return moment is not None and moment <= (now or timezone.now())


def with_retries(envelope: contract.Envelope, retries: int) -> bytes:
    """Return the body of `envelope` again with the `retries` counter set."""
    body = {**envelope.extra, **envelope.to_dict()}
    body["retries"] = retries
    return contract.dumps(body).encode()


def reset_for_retry(body: bytes, message_ttl: int | None) -> bytes:
    """Return a dead letter's body with `retries` at 0 and a fresh `expires`, if it had one.

    A body that is not a JSON object is returned unchanged.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict):
        return body
    parsed["retries"] = 0
    if parsed.get("expires") and message_ttl:
        moment = timezone.now() + datetime.timedelta(seconds=message_ttl)
        parsed["expires"] = moment.replace(microsecond=0).isoformat()
    return contract.dumps(parsed).encode()


def preview(body: Any) -> str:
    """Return the start of a body for a log line, on one line with control characters escaped."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body[: PREVIEW_CHARS * 4]).decode("utf-8", "replace")
    return one_line(body, PREVIEW_CHARS)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else _kind_of(value)
    return one_line(text, PREVIEW_CHARS // 2)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _expect(body: dict, key: str, kind: type) -> None:
    if not isinstance(body[key], kind):
        raise BadMessage(f"{key} must be {_names[kind]}, got {_kind_of(body[key])}")


def _expect_optional(body: dict, key: str, kind: type) -> None:
    if body.get(key) is not None:
        _expect(body, key, kind)


_names = {str: "a string", dict: "an object"}


def _kind_of(value: Any) -> str:
    return "an object" if isinstance(value, dict) else _kind(value)
