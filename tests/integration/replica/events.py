"""Build event bodies as a master would send them, for the replica tests."""

from __future__ import annotations

import datetime
import json
from typing import Any

from cqrs_outbox.core import wire

UPDATED = "2026-01-02 03:04:05.123456+00:00"


def body(signal_type: str, cqrs_id: str, pk: Any, revision: int, updated: Any = UPDATED,
         **fields: Any) -> dict:
    """Return a full envelope dict for one event of row `pk` at `revision`, changed at
    `updated` (text, or a datetime sent as `str()` of it, as masters do)."""
    updated = str(updated)
    if signal_type == wire.SIGNAL_DELETE:
        data = {"id": pk, "cqrs_revision": revision, "cqrs_updated": updated, **fields}
    else:
        data = {"id": pk, **fields, "cqrs_revision": revision, "cqrs_updated": updated}
    return wire.Envelope(
        signal_type=signal_type,
        cqrs_id=cqrs_id,
        instance_data=data,
        instance_pk=pk,
        expires=(datetime.datetime.now(datetime.timezone.utc)
                 + datetime.timedelta(hours=1)).replace(microsecond=0).isoformat(),
    ).to_dict()


def save(cqrs_id: str, pk: Any, revision: int, updated: Any = UPDATED, **fields: Any) -> dict:
    return body(wire.SIGNAL_SAVE, cqrs_id, pk, revision, updated, **fields)


def sync(cqrs_id: str, pk: Any, revision: int, updated: Any = UPDATED, **fields: Any) -> dict:
    return body(wire.SIGNAL_SYNC, cqrs_id, pk, revision, updated, **fields)


def delete(cqrs_id: str, pk: Any, revision: int, updated: Any = UPDATED, **fields: Any) -> dict:
    return body(wire.SIGNAL_DELETE, cqrs_id, pk, revision, updated, **fields)


def encode(dct: dict) -> bytes:
    return json.dumps(dct).encode()
