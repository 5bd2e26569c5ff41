"""The contract between the Django app and the relay: the outbox table and the envelope.

Both sides import this module and nothing else of each other. It holds the table and
column names, the event statuses, the partition function and the wire envelope that
django-cqrs peers read.
"""

from __future__ import annotations

import decimal
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

# Tables (created by the Django app's migrations; the relay only reads and writes them).
OUTBOX_TABLE = "cqrs_outbox_event"
LEASE_TABLE = "cqrs_outbox_lease"
TOMBSTONE_TABLE = "cqrs_outbox_tombstone"

# PostgreSQL channel the outbox insert trigger notifies (once per transaction).
NOTIFY_CHANNEL = "cqrs_outbox"

# The partition count is part of the on-disk format: changing it would let two relays
# own the same (cqrs_id, pk) at once, so it is fixed.
PARTITIONS = 64

DEFAULT_EXCHANGE = "cqrs"

STATUS_PENDING = "pending"
STATUS_PUBLISHED = "published"
STATUS_FAILED = "failed"
STATUSES = (STATUS_PENDING, STATUS_PUBLISHED, STATUS_FAILED)

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


def partition_for(cqrs_id: str, instance_pk: Any) -> int:
    """Return the partition of (cqrs_id, pk), the same on every process and version."""
    key = f"{cqrs_id}\x00{instance_pk}".encode()
    return zlib.crc32(key) % PARTITIONS


def routing_key(cqrs_id: str, queue: str | None = None) -> str:
    """Return the routing key: the cqrs_id, or `cqrs.<queue>.<cqrs_id>` aimed at one queue."""
    if queue:
        return f"cqrs.{queue}.{cqrs_id}"
    return cqrs_id


def json_value(value: Any) -> Any:
    """Return a JSON-ready form of a pk or correlation id, as django-cqrs writes them."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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
    meta: dict | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        """Return the body as a dict with every key django-cqrs sends."""
        return {
            "signal_type": self.signal_type,
            "cqrs_id": self.cqrs_id,
            "instance_data": self.instance_data,
            "previous_data": self.previous_data,
            "instance_pk": json_value(self.instance_pk),
            "correlation_id": json_value(self.correlation_id),
            "retries": self.retries,
            "expires": self.expires,
            "meta": self.meta,
        }

    def to_json(self) -> str:
        """Return the exact body to publish."""
        return dumps(self.to_dict())


def _encode_other(value: Any) -> Any:
    # django-cqrs sends Decimal as a JSON number; anything else JSON lacks goes as text.
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def dumps(body: dict) -> str:
    """Serialise a body compactly, with the value forms django-cqrs peers expect."""
    return json.dumps(body, separators=(",", ":"), default=_encode_other, ensure_ascii=False)


@dataclass(frozen=True)
class NewEvent:
    """An event to insert into the outbox (the columns the writer sets; the rest default)."""

    cqrs_id: str
    instance_pk: str
    signal_type: str
    revision: int
    partition: int
    routing_key: str
    payload: str
    correlation_id: str | None = None
    traceparent: str | None = None  # W3C trace context of the save, sent as headers
    tracestate: str | None = None
    signature: str | None = None  # the `cqrs-signature` header value (relay.signing)
