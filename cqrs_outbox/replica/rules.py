"""Decide whether an event applies to a replica row: the one place these rules live.

Within one life of a row, from its creation to its DELETE, the master's `cqrs_revision`
orders its events. A row deleted and created again with the same pk starts a new life
at revision 0, so across lives revisions say nothing and the master's clock decides:
every event carries `cqrs_updated` (`u` below; a DELETE, the time of the delete).

Per row the replica knows the row's revision `R` and `cqrs_updated` `U`, and a
tombstone `(T, D)`: the `(u, r)` of the last DELETE it saw (kept when the row is
created again). Pairs compare time first: `(u, r) <= (T, D)` means at or before the
DELETE. "Newer" compares times when they are more than CLOCK_TOLERANCE apart, and
revisions when they are closer, so that two saves whose clock readings came out of
order (two hosts, or two transactions racing for the row) still go by revision.

| # | event `(r, u)` | replica holds                          | verdict                       |
|---|----------------|----------------------------------------|-------------------------------|
| 1 | repair SYNC    | anything                               | apply, forget the tombstone   |
| 2 | any other      | a tombstone, `(u, r) <= (T, D)`        | refuse: from before that      |
|   |                |                                        | DELETE (tombstoned, or stale  |
|   |                |                                        | when the row lives again)     |
| 3 | any            | no row                                 | apply (a DELETE: tombstone    |
|   |                |                                        | := (u, r))                    |
| 4 | SAVE, SYNC     | row, newer than `(R, U)`               | apply                         |
| 5 | SAVE, SYNC     | row, `r == 0` and `u > U`              | apply: the row was created    |
|   |                |                                        | again; its DELETE is late     |
| 6 | SYNC           | row, `r == R`, `u` within tolerance    | apply: restates the row       |
| 7 | DELETE         | row, `(u, r) > (U, R)`                 | apply: deleted after the      |
|   |                |                                        | replica's last change;        |
|   |                |                                        | tombstone := (u, r)           |
| 8 | DELETE         | row, otherwise                         | refuse, and tombstone :=      |
|   |                |                                        | (u, r): an old DELETE never   |
|   |                |                                        | removes a row created after   |
|   |                |                                        | it, nor lets its life return  |
| 9 | anything else  |                                        | refuse: stale (duplicate at   |
|   |                |                                        | the revision held)            |

So a row created again after its DELETE applies even at a revision at or below the
tombstone (3), a late copy of a SAVE from before the DELETE stays refused (2), a DELETE
from a django-cqrs master that deleted through a stale instance (its revision at or
below the row's) still removes the row (7), and a late copy of an old DELETE never
removes a row created after it (8).

Where a time is unknown (a tombstone written before tombstones kept times, an
unreadable `cqrs_updated`), revisions alone decide, as they did before. What the rules
assume: the master reads its clock for a DELETE after the row's last save, and for a
re-creation after the DELETE (true on one clock; hosts must agree to within the time
between them); readings of one life are out of order by less than CLOCK_TOLERANCE; and
where events of two lives of a row arrive out of order, the saves of the two lives are
more than CLOCK_TOLERANCE apart.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cqrs_outbox.core import wire

APPLY = "apply"
STALE = "stale"  # older than (or, for SAVE, equal to) what the replica holds
TOMBSTONED = "tombstoned"  # the row was deleted at this revision or later
DUPLICATE = "duplicate"  # a stale event at exactly the revision held: delivered again

# How far apart two readings of the master's clock must be before time, not revision,
# orders two events of a row.
CLOCK_TOLERANCE = datetime.timedelta(seconds=1)


@dataclass(frozen=True)
class State:
    """What the replica holds for one row: its revision and `cqrs_updated`, and the
    revision and time of its tombstone."""

    row: int | None = None
    tombstone: int | None = None
    row_updated: datetime.datetime | None = None
    tombstone_updated: datetime.datetime | None = None


def decide(signal_type: str, revision: int, state: State,
           updated: datetime.datetime | None = None, repair: bool = False) -> str:
    """Return APPLY, STALE or TOMBSTONED for an event at `revision` and time `updated`."""
    if repair and signal_type == wire.SIGNAL_SYNC:
        return APPLY
    if before_tombstone(revision, updated, state):
        if state.row is not None or signal_type == wire.SIGNAL_DELETE:
            return STALE
        return TOMBSTONED
    if state.row is None:
        return APPLY
    if signal_type == wire.SIGNAL_DELETE:
        return APPLY if _pair_after(updated, revision, state.row_updated, state.row) else STALE
    return APPLY if _save_applies(signal_type, revision, updated, state) else STALE


def _save_applies(signal_type: str, revision: int, updated: datetime.datetime | None,
                  state: State) -> bool:
    row, held = state.row, state.row_updated
    if updated is None or held is None:
        return revision > row or (signal_type == wire.SIGNAL_SYNC and revision == row)
    if abs(updated - held) > CLOCK_TOLERANCE:
        return updated > held
    if revision == 0 and updated > held:
        return True  # a creation: no save of the same life can read the clock before it
    return revision > row or (signal_type == wire.SIGNAL_SYNC and revision == row)


def clock_disagrees(revision: int, updated: datetime.datetime | None, state: State) -> bool:
    """Tell whether a refused SAVE or SYNC has a higher revision than the row but a time
    more than CLOCK_TOLERANCE earlier: a late event of an earlier life, or clocks apart."""
    held = state.row_updated
    return (state.row is not None and revision > state.row and updated is not None
            and held is not None and held - updated > CLOCK_TOLERANCE)


def skip_reason(verdict: str, revision: int, state: State,
                updated: datetime.datetime | None = None) -> str:
    """Name why an event that does not apply is skipped: `verdict`, or DUPLICATE for a
    stale event at the very revision (and time) the replica holds."""
    if verdict != STALE:
        return verdict
    if state.row is not None:
        held, held_time = state.row, state.row_updated
    else:
        held, held_time = state.tombstone, state.tombstone_updated
    if revision == held and (updated is None or held_time is None or updated == held_time):
        return DUPLICATE
    return verdict


def after(signal_type: str, revision: int, state: State,
          updated: datetime.datetime | None = None, repair: bool = False) -> State:
    """Return the state once an applied event at `revision` and `updated` has taken effect."""
    if signal_type == wire.SIGNAL_DELETE:
        return _tombstone(revision, updated, State())
    if repair:
        return State(revision, None, updated, None)
    return State(revision, state.tombstone, updated, state.tombstone_updated)


def after_refusal(signal_type: str, revision: int, state: State,
                  updated: datetime.datetime | None = None) -> State:
    """Return the state once an event that did not apply was seen (rule 8): a DELETE
    older than the row still raises the tombstone, so its life cannot come back."""
    if signal_type != wire.SIGNAL_DELETE or state.row is None:
        return state
    if before_tombstone(revision, updated, state):
        return state
    return _tombstone(revision, updated, state)


def _tombstone(revision: int, updated: datetime.datetime | None, state: State) -> State:
    return State(state.row, revision, state.row_updated, updated)


def before_tombstone(revision: int, updated: datetime.datetime | None, state: State) -> bool:
    """Tell whether an event at `revision` and `updated` is at or before the tombstone."""
    if state.tombstone is None:
        return False
    if updated is None or state.tombstone_updated is None:
        return revision <= state.tombstone
    return (updated, revision) <= (state.tombstone_updated, state.tombstone)


def _pair_after(updated: datetime.datetime | None, revision: int,
                held: datetime.datetime | None, held_revision: int) -> bool:
    if updated is None or held is None or updated == held:
        return revision > held_revision
    return updated > held
