"""The outbox table contract shared by the Django app and the relay.

The table and channel names, the event statuses, the partition function, the routing
key and the columns a writer sets. The message body itself is `cqrs_outbox.core.wire`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

# Tables (created by the Django app's migrations; the relay only reads and writes them).
OUTBOX_TABLE = "cqrs_outbox_event"
LEASE_TABLE = "cqrs_outbox_lease"
TOMBSTONE_TABLE = "cqrs_outbox_tombstone"
# Row changes made outside the ORM, recorded by the capture triggers (CQRS capture mode
# 'database') until the Django side turns them into events.
CAPTURE_TABLE = "cqrs_outbox_capture"

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

# What models declare and commands default to, with django-cqrs's meaning.
ALL_FIELDS = "__all__"  # CQRS_FIELDS / CQRS_TRACKED_FIELDS: every concrete field
# The message TTL a dead letter gets when `cqrs_dead_letters retry` sends it again; the
# replica's signature checks count it among the waits a signed event may have.
RETRY_MESSAGE_TTL = 86400  # seconds
DEFAULT_BATCH = 10000  # rows per batch of the sync, dump, load and diff commands


def partition_for(cqrs_id: str, instance_pk: Any) -> int:
    """Return the partition of (cqrs_id, pk), the same on every process and version."""
    key = f"{cqrs_id}\x00{instance_pk}".encode()
    return zlib.crc32(key) % PARTITIONS


def routing_key(cqrs_id: str, queue: str | None = None) -> str:
    """Return the routing key: the cqrs_id, or `cqrs.<queue>.<cqrs_id>` aimed at one queue."""
    if queue:
        return f"cqrs.{queue}.{cqrs_id}"
    return cqrs_id


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
    signature: str | None = None  # the `cqrs-signature` header value (core.signing)
