"""The chaos checks themselves: each kind of damage is reported, healthy histories are not."""

import datetime

from tests.faults.chaos import checks

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _replayed(log, deleted=None):
    outcome = checks.Outcome()
    checks.replay_log(log, deleted or {}, outcome)
    return outcome.problems


def test_replay_log__accepts_rising_revisions_equal_syncs_and_deletes():
    log = [(1, 7, "INSERT", None, 0), (2, 7, "UPDATE", 0, 2), (3, 7, "UPDATE", 2, 2),
           (4, 7, "DELETE", 2, None)]
    assert _replayed(log, {7: 3}) == []


def test_replay_log__flags_a_row_going_back():
    problems = _replayed([(1, 7, "INSERT", None, 3), (2, 7, "UPDATE", 3, 1)])
    assert problems == ["replica rows seen going back to an older revision: 1 "
                        "(e.g. pk 7: r3 -> r1 (UPDATE #2))"]


def test_replay_log__flags_a_deleted_row_coming_back_at_or_below_its_delete():
    log = [(1, 7, "INSERT", None, 1), (2, 7, "DELETE", 1, None), (3, 7, "INSERT", None, 4)]
    problems = _replayed(log, {7: 5})  # the master deleted it at r5; r4 is older
    assert problems == ["replica rows re-inserted at or below their deleted revision: 1 "
                        "(e.g. pk 7: deleted at r5, inserted again at r4 (#3))"]


def test_compare__names_differing_missing_resurrected_and_unknown_rows():
    row = ("a", 1, "", 2, T0)
    master = {1: row, 2: row, 3: row}
    replica = {1: row, 2: ("a", 1, "", 1, T0), 4: row, 5: row}
    outcome = checks.Outcome()
    checks.compare(master, replica, {4: 3}, outcome)
    assert outcome.problems == [
        "rows differing from the master: 1 (e.g. pk 2: master cqrs_revision 2 != 1 at replica)",
        "master rows missing at the replica: 1 (e.g. pk 3)",
        "rows deleted at the master but present at the replica: 1 "
        "(e.g. pk 4 (deleted at r3, replica r2))",
        "replica rows the master never committed: 1 (e.g. pk 5)",
    ]
    assert outcome.figures == {"rows equal": 1, "deleted rows absent": 0}
