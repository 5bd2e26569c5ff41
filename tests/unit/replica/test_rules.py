"""The revision rules: one example per verdict of the table in `rules`, then without times."""

import datetime

import pytest

from cqrs_outbox.replica import rules
from cqrs_outbox.replica.rules import APPLY, DUPLICATE, STALE, TOMBSTONED, State

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
MS = datetime.timedelta(milliseconds=1)
TOLERANCE = rules.CLOCK_TOLERANCE


def at(ms: float) -> datetime.datetime:
    return T0 + ms * MS


def row(revision, ms, tombstone=None, deleted_ms=None):
    """A row at `revision` changed at `ms`, with a tombstone if given."""
    return State(revision, tombstone, at(ms), None if deleted_ms is None else at(deleted_ms))


def gone(tombstone, deleted_ms):
    """No row; the tombstone of a DELETE at `tombstone` made at `deleted_ms`."""
    return State(None, tombstone, None, at(deleted_ms))


def decide(signal, revision, ms, state, repair=False):
    return rules.decide(signal, revision, state, at(ms), repair)


# 1: a repair SYNC applies whatever the row or tombstone say, and drops the tombstone.
def test_repair_sync__applies_over_a_forged_revision_and_over_a_tombstone():
    frozen = row(2**40, 10**9)
    assert decide("SYNC", 3, 50, frozen, repair=True) == APPLY
    assert decide("SYNC", 3, 50, gone(2**40, 10**9), repair=True) == APPLY
    assert rules.after("SYNC", 3, gone(9, 100), at(50), repair=True) == State(3, None, at(50))


def test_repair_marker__counts_only_on_a_sync():
    assert decide("SAVE", 3, 50, row(2**40, 10**9), repair=True) == STALE


# 2: at or before the tombstone: from before that DELETE.
def test_old_save_from_before_the_delete__tombstoned():
    assert decide("SAVE", 5, 900, gone(6, 1000)) == TOMBSTONED


def test_old_save_from_before_the_delete__stale_once_the_row_lives_again():
    assert decide("SAVE", 5, 900, row(0, 2000, tombstone=6, deleted_ms=1000)) == STALE


def test_same_delete_again__a_duplicate():
    state = gone(6, 1000)
    verdict = decide("DELETE", 6, 1000, state)
    assert verdict == STALE
    assert rules.skip_reason(verdict, 6, state, at(1000)) == DUPLICATE


# 3: no row.
def test_row_created_again__applies_at_a_revision_below_the_tombstone():
    assert decide("SAVE", 0, 1001, gone(6, 1000)) == APPLY
    assert decide("SYNC", 2, 5000, gone(6, 1000)) == APPLY


def test_delete_of_a_row_never_seen__applies_and_leaves_its_tombstone():
    assert decide("DELETE", 4, 1000, State()) == APPLY
    assert rules.after("DELETE", 4, State(), at(1000)) == State(None, 4, None, at(1000))


# 4: newer than the row.
def test_next_revision_with_a_clock_reading_a_little_earlier__applies_by_revision():
    """Two saves racing for the row, or two hosts: revision decides within the tolerance."""
    assert decide("SAVE", 6, 995, row(5, 1000)) == APPLY


def test_higher_revision_from_well_before_the_row__stale_and_named_a_clock_problem():
    state = row(1, 10_000)
    late = 10_000 - TOLERANCE / MS - 1
    assert decide("SAVE", 7, late, state) == STALE
    assert rules.clock_disagrees(7, at(late), state)
    assert not rules.clock_disagrees(7, at(9_999), state)


def test_later_time_beyond_the_tolerance__applies_whatever_the_revision():
    assert decide("SAVE", 1, 1000 + TOLERANCE / MS + 1, row(5, 1000)) == APPLY


# 5: a creation later than the row: the row was created again and its DELETE is late.
def test_creation_later_than_the_row__applies_within_the_tolerance():
    assert decide("SAVE", 0, 1002, row(5, 1000)) == APPLY


def test_late_copy_of_an_earlier_revision_with_a_later_reading__stale():
    """A raced pair delivered twice: the copy of revision 5 must not undo revision 6."""
    assert decide("SAVE", 5, 1003, row(6, 1000)) == STALE


# 6: a SYNC restates the row.
def test_sync_at_the_rows_revision_and_time__applies():
    assert decide("SYNC", 5, 1000, row(5, 1000)) == APPLY


def test_sync_at_the_rows_revision_from_well_before__stale():
    assert decide("SYNC", 5, 1000 - 2 * TOLERANCE / MS, row(5, 1000)) == STALE


# 7: a DELETE after the replica's last change.
def test_delete_through_a_stale_instance__removes_the_row():
    """django-cqrs sends the revision of the instance in memory plus one: here 3 for a
    row the replica holds at 5. The master deleted after the row's last change."""
    assert decide("DELETE", 3, 1500, row(5, 1000)) == APPLY
    assert rules.after("DELETE", 3, row(5, 1000), at(1500)) == State(None, 3, None, at(1500))


def test_delete_at_the_same_time__goes_by_revision():
    assert decide("DELETE", 6, 1000, row(5, 1000)) == APPLY
    assert decide("DELETE", 5, 1000, row(5, 1000)) == STALE


# 8: an old DELETE never removes a row created after it, and raises the tombstone.
def test_old_delete__leaves_the_row_created_after_it_and_keeps_its_life_out():
    state = row(1, 2000)
    assert decide("DELETE", 8, 1000, state) == STALE
    marked = rules.after_refusal("DELETE", 8, state, at(1000))
    assert marked == State(1, 8, at(2000), at(1000))
    assert decide("SAVE", 7, 900, marked) == STALE  # a late save of the deleted life
    assert decide("SAVE", 2, 2500, marked) == APPLY  # the row's own next change


def test_refused_delete_at_or_before_the_tombstone__changes_nothing():
    state = row(1, 2000, tombstone=8, deleted_ms=1000)
    assert rules.after_refusal("DELETE", 8, state, at(1000)) == state
    assert rules.after_refusal("SAVE", 0, state, at(10)) == state


# 9: the rest is stale.
def test_older_revision__stale_and_the_same_one_a_duplicate():
    state = row(5, 1000)
    assert rules.skip_reason(decide("SAVE", 4, 900, state), 4, state, at(900)) == STALE
    assert rules.skip_reason(decide("SAVE", 5, 1000, state), 5, state, at(1000)) == DUPLICATE


def test_after__a_save_keeps_the_tombstone():
    state = gone(6, 1000)
    assert rules.after("SAVE", 0, state, at(1001)) == State(0, 6, at(1001), at(1000))


# Without times (tombstones from before they kept them, unreadable cqrs_updated):
# revisions alone decide, as they always did.
@pytest.mark.parametrize(
    "signal, revision, state, verdict",
    [
        ("SAVE", 0, State(), APPLY),
        ("SAVE", 3, State(row=2), APPLY),
        ("SAVE", 2, State(row=2), STALE),
        ("SAVE", 1, State(row=2), STALE),
        ("SYNC", 2, State(row=2), APPLY),
        ("SYNC", 1, State(row=2), STALE),
        ("SYNC", 0, State(), APPLY),
        ("SAVE", 4, State(tombstone=5), TOMBSTONED),
        ("SYNC", 5, State(tombstone=5), TOMBSTONED),
        ("SAVE", 6, State(tombstone=5), APPLY),
        ("SAVE", 7, State(row=6, tombstone=5), APPLY),
        ("DELETE", 3, State(row=2), APPLY),
        ("DELETE", 2, State(row=2), STALE),
        ("DELETE", 3, State(), APPLY),
        ("DELETE", 3, State(tombstone=3), STALE),
        ("DELETE", 4, State(tombstone=3), APPLY),
    ],
)
def test_decide_without_times(signal, revision, state, verdict):
    assert rules.decide(signal, revision, state) == verdict


def test_after_without_times__a_delete_raises_the_tombstone_and_a_save_sets_the_row():
    assert rules.after("DELETE", 4, State(row=3, tombstone=1)) == State(None, 4)
    assert rules.after("SAVE", 5, State(None, 4)) == State(5, 4)


@pytest.mark.parametrize("apart_ms, verdict", [(1000, STALE), (1001, APPLY), (1500, APPLY)])
def test_clock_tolerance__is_one_second_exactly(apart_ms, verdict):
    """Time orders two events of a row only when their clocks are more than one second
    apart: at exactly one second a lower revision is still stale, one past it applies."""
    assert rules.CLOCK_TOLERANCE == datetime.timedelta(seconds=1)
    assert decide("SAVE", 1, 1000 + apart_ms, row(5, 1000)) == verdict


def test_save_with_one_time_unknown__revision_alone_decides():
    """When either the event's or the row's time is unknown, the revision decides."""
    no_time = State(5, None, None, None)
    assert rules.decide("SAVE", 6, no_time, at(0)) == APPLY
    assert rules.decide("SAVE", 4, no_time, at(10_000)) == STALE
    assert rules.decide("SAVE", 6, row(5, 10_000), None) == APPLY
    assert rules.decide("SAVE", 4, row(5, 0), None) == STALE


@pytest.mark.parametrize("revision, earlier_ms, disagrees", [
    (6, 1000, False), (6, 1001, True), (5, 5000, False), (4, 5000, False),
])
def test_clock_disagrees__only_for_a_higher_revision_more_than_the_tolerance_earlier(
        revision, earlier_ms, disagrees):
    """A refused save disagrees with the clock only if its revision is above the row's
    and its time more than one second (not exactly one) before the row's."""
    assert rules.clock_disagrees(revision, at(10_000 - earlier_ms), row(5, 10_000)) is disagrees


def test_skip_reason__a_stale_event_at_the_held_revision_with_a_time_unknown_is_a_duplicate():
    """Either time missing, the same revision is a redelivery; both known and different,
    it is stale."""
    assert rules.skip_reason(STALE, 5, row(5, 1000), None) == DUPLICATE
    assert rules.skip_reason(STALE, 5, State(5, None, None, None), at(1000)) == DUPLICATE
    assert rules.skip_reason(STALE, 5, row(5, 1000), at(1000)) == DUPLICATE
    assert rules.skip_reason(STALE, 5, row(5, 1000), at(2000)) == STALE
    assert rules.skip_reason(STALE, 4, row(5, 1000), None) == STALE


def test_after_refusal__only_a_delete_of_a_held_row_moves_the_tombstone():
    """A refused SAVE leaves the state as it was; so does a refused DELETE of a row the
    replica does not hold; a refused DELETE of a held row raises the tombstone."""
    held = row(5, 1000)
    assert rules.after_refusal("SAVE", 3, held, at(500)) == held
    nothing = State()
    assert rules.after_refusal("DELETE", 9, nothing, at(2000)) == nothing
    assert rules.after_refusal("DELETE", 3, held, at(500)) == State(5, 3, at(1000), at(500))


def test_before_tombstone__without_times_compares_revisions_inclusively():
    """With a time unknown, an event at or below the tombstone's revision is before it."""
    assert rules.before_tombstone(5, None, gone(5, 1000)) is True
    assert rules.before_tombstone(4, at(9000), State(None, 5, None, None)) is True
    assert rules.before_tombstone(6, None, gone(5, 1000)) is False
