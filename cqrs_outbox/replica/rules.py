"""Decide by revision whether an event applies: the one place these rules live.

A SAVE applies when it is newer than the row, or, with no row, newer than the row's
tombstone. A SYNC is the master's explicit statement of the row, so it also applies at
the row's own revision (repairing a replica that drifted); an older one is ignored like
any other stale event, so a SYNC redelivered late cannot undo newer changes. A DELETE
applies when it is newer than the row, and always raises the tombstone to its revision.
"""

from __future__ import annotations

from dataclasses import dataclass

from cqrs_outbox.core import wire

APPLY = "apply"
STALE = "stale"  # older than (or, for SAVE, equal to) what the replica holds
TOMBSTONED = "tombstoned"  # the row was deleted at this revision or later
DUPLICATE = "duplicate"  # a stale event at exactly the revision held: delivered again


@dataclass(frozen=True)
class State:
    """What the replica holds for one row: its revision, and its tombstone's revision."""

    row: int | None = None
    tombstone: int | None = None


def decide(signal_type: str, revision: int, state: State) -> str:
    """Return APPLY, STALE or TOMBSTONED for an event at `revision` against `state`."""
    if state.row is not None:
        if signal_type == wire.SIGNAL_SYNC:
            return APPLY if revision >= state.row else STALE
        return APPLY if revision > state.row else STALE
    if state.tombstone is not None and revision <= state.tombstone:
        return STALE if signal_type == wire.SIGNAL_DELETE else TOMBSTONED
    return APPLY


def skip_reason(verdict: str, revision: int, state: State) -> str:
    """Name why an event that does not apply is skipped: `verdict`, or DUPLICATE for a
    stale event at the very revision the replica holds."""
    held = state.row if state.row is not None else state.tombstone
    if verdict == STALE and revision == held:
        return DUPLICATE
    return verdict


def after(signal_type: str, revision: int, state: State) -> State:
    """Return the state once an applied event at `revision` has taken effect."""
    if signal_type == wire.SIGNAL_DELETE:
        return State(row=None, tombstone=max(revision, state.tombstone or revision))
    return State(row=revision, tombstone=state.tombstone)
