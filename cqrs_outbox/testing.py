"""Helpers for unit-testing master models without a broker.

    from cqrs_outbox.testing import capture_events

    def test_publishes_rename(db):
        with capture_events() as events:
            author.name = "New"
            author.save()
        assert events.bodies()[0]["instance_data"]["name"] == "New"

`capture_events` reads the outbox rows written inside the block, so it sees exactly what
the relay will publish. Events are written when a transaction commits; inside a test's
transaction, which never commits, the block writes the queued events at its end (as the
commit would) before reading them. To run the relay's own loop in
memory, hand `relay.publisher.StubPublisher` to the relay (see docs/models.md,
"Testing your models without a broker").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from cqrs_outbox.master import outbox
from cqrs_outbox.models import OutboxEvent


class CapturedEvents(list):
    """The outbox rows written inside a `capture_events()` block, oldest first."""

    def bodies(self) -> list[dict]:
        """Return the decoded message bodies."""
        return [json.loads(event.payload) for event in self]

    def of(self, cqrs_id: str, signal_type: str | None = None) -> list[OutboxEvent]:
        """Return the events of one CQRS_ID (and signal type, if given)."""
        return [
            e for e in self
            if e.cqrs_id == cqrs_id and (signal_type is None or e.signal_type == signal_type)
        ]


@contextlib.contextmanager
def capture_events(using: str = "default") -> Iterator[CapturedEvents]:
    """Collect the outbox events written on `using` while the block runs."""
    outbox.flush(using)  # what was queued before the block is not the block's
    last = OutboxEvent.objects.using(using).order_by("-id").values_list("id", flat=True).first()
    captured = CapturedEvents()
    finished = False
    try:
        yield captured
        finished = True
    finally:
        if finished:
            outbox.flush(using)
        rows = OutboxEvent.objects.using(using).filter(id__gt=last or 0).order_by("id")
        captured.extend(rows)
