"""Decode and validate incoming message bodies; encode the ones sent on for retries.

Readers ignore keys they do not know, as the wire format requires. Every problem is a
`BadMessage` whose text names the key at fault, so the dead-letter reason says exactly
what to fix.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from relay import contract
from relay.exceptions import BadMessage

# Keys django-cqrs itself refuses a message without; the others have defaults.
REQUIRED_KEYS = ("signal_type", "cqrs_id", "instance_data", "instance_pk")
REVISION_KEY = "cqrs_revision"
UPDATED_KEY = "cqrs_updated"
PREVIEW_CHARS = 200  # characters of a bad body quoted in logs


def decode(body: bytes) -> contract.Envelope:
    """Parse a raw body into an envelope; raise BadMessage saying what is wrong."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadMessage(f"body is not JSON: {exc}") from exc
    return validate(parsed)


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
            f"signal_type must be one of {', '.join(contract.SIGNAL_TYPES)}, got {signal_type!r}"
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
        raise BadMessage(f"retries must be a non-negative integer, got {retries!r}")
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
    if not _is_int(value):
        raise BadMessage(f"instance_data.{REVISION_KEY} must be an integer, got {value!r}")
    if UPDATED_KEY not in data:
        raise BadMessage(f"instance_data.{UPDATED_KEY} is missing")
    return value


def expires_at(value: str | None) -> datetime.datetime | None:
    """Parse an `expires` value (ISO-8601, naive means UTC); raise BadMessage if unreadable."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise BadMessage(f"expires must be an ISO-8601 datetime or null, got {value!r}")
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
    """Return the start of a body for a log line."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "..."


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
