"""The message body: encode, decode and validate it, its expiry, retries and DELETE data.

The one place that knows the envelope django-cqrs peers exchange. The master builds
bodies here from the values it supplies; the replica decodes and validates them here,
and re-encodes the ones it sends on for a retry. Writers keep the exact form
django-cqrs produces (compact JSON, Decimal as a number, other values as text);
readers ignore keys they do not know, as the wire format requires.

Every problem with a received body is a `BadMessage` whose text names the key at
fault, so the dead-letter reason says exactly what to fix. A body over the size limit
is refused before it is parsed, and one nested deeper than the depth limit before
anything walks it, so no body can run the worker out of memory or stack.

Django-free: times come from the standard library or from the caller.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.core.escape import one_line

SIGNAL_SAVE = "SAVE"
SIGNAL_DELETE = "DELETE"
SIGNAL_SYNC = "SYNC"
SIGNAL_TYPES = (SIGNAL_SAVE, SIGNAL_DELETE, SIGNAL_SYNC)

# Message properties every publisher sets (django-cqrs reads text/plain, persistent).
CONTENT_TYPE = "text/plain"
DELIVERY_MODE_PERSISTENT = 2

ENVELOPE_KEYS = (
    "signal_type",
    "cqrs_id",
    "instance_data",
    "previous_data",
    "instance_pk",
    "correlation_id",
    "retries",
    "expires",
    "meta",
)

# Keys django-cqrs itself refuses a message without; the others have defaults.
REQUIRED_KEYS = ("signal_type", "cqrs_id", "instance_data", "instance_pk")
_KNOWN_KEYS = frozenset(ENVELOPE_KEYS)

# Keys of our own, which django-cqrs readers ignore: `repair` (true) marks a SYNC sent by
# `cqrs_sync --repair` or the admin's repair action; `signed_at` is when a signing master
# built the body, inside the signed bytes.
REPAIR_KEY = "repair"
SIGNED_AT_KEY = "signed_at"

# Reserved keys of `instance_data`: every event carries the row's revision and the time
# of its change; a DELETE names the deleted row by DELETE_PK_KEY and may add CUSTOM_KEY.
REVISION_KEY = "cqrs_revision"
UPDATED_KEY = "cqrs_updated"
DELETE_PK_KEY = "id"
CUSTOM_KEY = "custom"
RESERVED_KEYS = (REVISION_KEY, UPDATED_KEY)

PREVIEW_CHARS = 200  # characters of a bad body quoted in logs
MAX_BODY_SIZE = 16 * 1024 * 1024  # bytes, the default of CQRS['replica']['max_body_size']
MAX_DEPTH = 64  # levels of arrays and objects, the default of CQRS['replica']['max_depth']


def json_value(value: Any) -> Any:
    """Return a JSON-ready form of a pk or correlation id, as django-cqrs writes them."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def body_dict(signal_type: str, cqrs_id: str, instance_data: dict,
              previous_data: dict | None, instance_pk: Any, correlation_id: Any,
              retries: int, expires: str | None, meta: Any) -> dict:
    """Return a body with every key django-cqrs sends, in its order: what
    `Envelope.to_dict()` gives, for a writer that has no Envelope to build."""
    return {
        "signal_type": signal_type,
        "cqrs_id": cqrs_id,
        "instance_data": instance_data,
        "previous_data": previous_data,
        "instance_pk": json_value(instance_pk),
        "correlation_id": json_value(correlation_id),
        "retries": retries,
        "expires": expires,
        "meta": meta,
    }


@dataclass(frozen=True)
class Envelope:
    """One CQRS message as it travels on the wire."""

    signal_type: str
    cqrs_id: str
    instance_data: dict
    instance_pk: Any
    previous_data: dict | None = None
    correlation_id: Any = None
    retries: int = 0
    expires: str | None = None
    meta: Any = None
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """Return the body as a dict with every key django-cqrs sends."""
        return body_dict(self.signal_type, self.cqrs_id, self.instance_data,
                         self.previous_data, self.instance_pk, self.correlation_id,
                         self.retries, self.expires, self.meta)

    def to_json(self) -> str:
        """Return the exact body to publish."""
        return dumps(self.to_dict())


def _encode_other(value: Any) -> Any:
    # django-cqrs sends Decimal as a JSON number; anything else JSON lacks goes as text.
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


# One encoder for every body: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), default=_encode_other,
                           ensure_ascii=False).encode


def dumps(body: dict) -> str:
    """Serialise a body compactly, with the value forms django-cqrs peers expect."""
    return _encode(body)


def decode(body: bytes, max_size: int = MAX_BODY_SIZE,
           max_depth: int = MAX_DEPTH) -> Envelope:
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
    # Each level of nesting opens with a bracket of its own, so a text with no more
    # brackets (in strings too) than the limit needs no walk.
    if text.count("{") + text.count("[") > max_depth and depth_over(parsed, max_depth):
        raise _too_deep(max_depth)
    return validate(parsed)


def depth_over(value: Any, limit: int) -> bool:
    """Tell whether arrays and objects nest deeper than `limit` levels (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
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


def validate(body: Any) -> Envelope:
    """Check a decoded body and return it as an envelope; raise BadMessage naming the key."""
    if not isinstance(body, dict):
        raise BadMessage(f"body must be a JSON object, got {_kind(body)}")
    for key in REQUIRED_KEYS:
        if key not in body:
            raise BadMessage(f"key {key!r} is missing")
    signal_type = body["signal_type"]
    if signal_type not in SIGNAL_TYPES:
        raise BadMessage(
            f"signal_type must be one of {', '.join(SIGNAL_TYPES)}, "
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
    # `meta` is handed to the hooks whatever JSON it is, as django-cqrs hands it; the
    # body's size and depth limits bound it like the rest.
    _expect_optional(body, "expires", str)
    retries = body.get("retries")
    if retries is not None and (not _is_int(retries) or retries < 0):
        raise BadMessage(f"retries must be a non-negative integer, got {_short(retries)}")
    if body.get("expires") is not None:
        expires_at(body["expires"])
    unknown = body.keys() - _KNOWN_KEYS
    return Envelope(
        signal_type=signal_type,
        cqrs_id=body["cqrs_id"],
        instance_data=body["instance_data"],
        instance_pk=body["instance_pk"],
        previous_data=body.get("previous_data"),
        correlation_id=body.get("correlation_id"),
        retries=retries or 0,
        expires=body.get("expires"),
        meta=body.get("meta"),
        extra={k: v for k, v in body.items() if k in unknown} if unknown else {},
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


def stamp(data: dict, revision: int, updated: Any) -> dict:
    """Set the reserved keys of `instance_data`: the row's revision and change time."""
    data[REVISION_KEY] = revision
    data[UPDATED_KEY] = str(updated)
    return data


def delete_data(pk: Any, row_revision: int, updated: Any, custom: Any = None) -> dict:
    """Return `instance_data` of a DELETE of the row `pk`, last saved at `row_revision`.

    A DELETE carries the revision one past the row's own, so that a replica holding the
    row at its last revision takes it, and a late SAVE of that revision cannot bring the
    row back. `custom` (the model's get_custom_cqrs_delete_data) is sent when truthy.
    """
    data = stamp({DELETE_PK_KEY: pk}, row_revision + 1, updated)
    if custom:
        data[CUSTOM_KEY] = custom
    return data


# Expiry: `expires` is ISO-8601 text in whole seconds; a naive moment means UTC.


def format_expires(moment: datetime.datetime) -> str:
    """Return the `expires` text of `moment`, in whole seconds."""
    return moment.replace(microsecond=0).isoformat()


def expires_after(now: datetime.datetime, seconds: float) -> str:
    """Return the `expires` text of the moment `seconds` after `now`."""
    return format_expires(now + datetime.timedelta(seconds=seconds))


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
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def is_expired(envelope: Envelope, now: datetime.datetime | None = None) -> bool:
    """Tell whether the envelope's `expires` moment has passed."""
    moment = expires_at(envelope.expires)
    return moment is not None and moment <= (now or utcnow())


def utcnow() -> datetime.datetime:
    """Return the current time, timezone-aware."""
    return datetime.datetime.now(datetime.timezone.utc)


# What Django's parse_datetime reads besides what `fromisoformat` reads: one- or
# two-digit fields, a comma before the fraction, up to 12 fraction digits, `Z`, and
# an offset with or without its colon or minutes.
_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})[T ]"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_datetime(value: str) -> datetime.datetime | None:
    """Parse ISO-8601 text as Django's parse_datetime does; None if it is not one.

    Raise ValueError when the text has the form of a datetime but no such moment exists.
    """
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        found = _DATETIME.match(value)
    if found is None:
        return None
    parts = found.groupdict()
    offset = parts.pop("offset")
    parts["microsecond"] = parts["microsecond"] and parts["microsecond"].ljust(6, "0")
    numbers = {key: int(text) for key, text in parts.items() if text is not None}
    return datetime.datetime(**numbers, tzinfo=_zone(offset))


def _zone(offset: str | None) -> datetime.timezone | None:
    if offset is None:
        return None
    if offset == "Z":
        return datetime.timezone.utc
    minutes = 60 * int(offset[1:3]) + (int(offset[-2:]) if len(offset) > 3 else 0)
    return datetime.timezone(datetime.timedelta(minutes=-minutes if offset[0] == "-" else minutes))


# Retries.


def with_retries(envelope: Envelope, retries: int) -> bytes:
    """Return the body of `envelope` again with the `retries` counter set."""
    body = {**envelope.extra, **envelope.to_dict()}
    body["retries"] = retries
    return dumps(body).encode()


def reset_for_retry(body: bytes, message_ttl: int | None,
                    now: datetime.datetime | None = None) -> bytes:
    """Return a dead letter's body with `retries` at 0 and, if it had an `expires`, an
    `expires` `message_ttl` seconds after `now` (default: the current time).

    A body that is not a JSON object (see `json_object`) is returned unchanged.
    """
    parsed = json_object(body)
    if parsed is None:
        return body
    parsed["retries"] = 0
    if parsed.get("expires") and message_ttl:
        parsed["expires"] = expires_after(now or utcnow(), message_ttl)
    return dumps(parsed).encode()


def has_expiry(body: bytes) -> bool:
    """Tell whether a raw body is a JSON object with an `expires` value."""
    parsed = json_object(body)
    return parsed is not None and bool(parsed.get("expires"))


def json_object(body: bytes, max_size: int = MAX_BODY_SIZE) -> dict | None:
    """Return a raw body parsed if it is a JSON object, else None (too large, not UTF-8,
    not JSON, nested beyond the parser's reach, not an object); never raise."""
    if len(body) > max_size:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return parsed if isinstance(parsed, dict) else None


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


_names: dict[type, str] = {str: "a string", dict: "an object"}


def _kind_of(value: Any) -> str:
    return "an object" if isinstance(value, dict) else _kind(value)
