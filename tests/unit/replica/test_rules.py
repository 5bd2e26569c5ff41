"""The revision rules, one case per line."""

import pytest

from cqrs_outbox.replica import rules
from cqrs_outbox.replica.rules import APPLY, STALE, TOMBSTONED, State


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
def test_decide(signal, revision, state, verdict):
    assert rules.decide(signal, revision, state) == verdict


def test_after__a_delete_raises_the_tombstone_and_a_save_sets_the_row():
    assert rules.after("DELETE", 4, State(row=3, tombstone=1)) == State(None, 4)
    assert rules.after("SAVE", 5, State(None, 4)) == State(5, 4)
