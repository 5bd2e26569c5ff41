"""Render the outbox at a glance: `python -m relay --status`, `cqrs_relay --status`."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from cqrs_outbox import store
from cqrs_outbox.core import contract

REPLAY_HINT = (
    "bind a queue to each key (start its consumer), then replay the events: admin "
    "filter 'returned (unroutable)', action 'Replay selected events'"
)


def render(summary: store.Summary, now: datetime.datetime | None = None) -> str:
    """Return the summary as lines of text: counts, lag, and who holds which partitions."""
    now = now or store.utcnow()
    age = summary.oldest_pending_age(now)
    lines = [
        f"pending: {summary.pending}",
        f"failed: {summary.failed}",
        f"oldest pending age: {'-' if age is None else f'{max(age, 0.0):.1f}s'}",
        f"returned (unroutable): {summary.returned}",
    ]
    for key, count in summary.returned_by_key:
        lines.append(f"  routing key {key}: {count} returned, no queue was bound")
    if summary.returned:
        lines.append(f"  {REPLAY_HINT}")
    live = [
        (o.owner, o.partition, o.expires_at)
        for o in summary.owners
        if o.expires_at is not None and o.expires_at > now
    ]
    lines.append(f"partitions held: {len(live)} of {contract.PARTITIONS}")
    for owner, partitions, expires in _by_owner(live):
        left = (expires - now).total_seconds()
        lines.append(
            f"  {owner}: {len(partitions)} partitions ({ranges(partitions)}), "
            f"lease ends in {left:.0f}s"
        )
    return "\n".join(lines)


def _by_owner(
    leases: Iterable[tuple[str, int, datetime.datetime]],
) -> list[tuple[str, list[int], datetime.datetime]]:
    grouped: dict[str, tuple[list[int], datetime.datetime]] = {}
    for owner, partition, ends in leases:
        partitions, expires = grouped.setdefault(owner, ([], ends))
        partitions.append(partition)
        grouped[owner] = (partitions, min(expires, ends))
    return [(name, parts, expires) for name, (parts, expires) in sorted(grouped.items())]


def ranges(numbers: Iterable[int]) -> str:
    """Return sorted numbers compactly: `0-5, 9, 12-20`."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
