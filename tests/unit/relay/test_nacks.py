"""The streak of nacks: when the broker counts as refusing, when the streak ends."""

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from relay import nacks

# A batch: how many events it held, and which of them the broker nacked (by position).
BATCHES = st.lists(
    st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(batches=BATCHES, again=st.floats(0, 1))
def test_streak__refusing_while_nothing_was_confirmed_since_the_first_nack(batches, again):
    """Model: nacked ids go out again (here, with probability `again`, in the next batch)."""
    streak = nacks.Streak()
    next_id, waiting = 0, []
    since_first_nack, open_ = [], False  # verdicts since the streak began; model's state
    for size, nacked_positions in batches:
        ids = waiting[:size] + list(range(next_id, next_id + size - len(waiting[:size])))
        next_id += size - len(waiting[:size])
        nacked = {ids[i] for i in nacked_positions if i < len(ids)}
        streak.record(ids, nacked)
        pending = (set(waiting) - set(ids)) | nacked
        if nacked and not open_:
            open_, since_first_nack = True, []
        if open_:
            since_first_nack += [i in nacked for i in ids]
            if not pending:
                open_ = False
        waiting = sorted(pending) if again > 0.5 else sorted(pending)[::-1]
        assert (streak.since is not None) == open_
        assert streak.refusing == (open_ and all(since_first_nack))
        assert streak.waiting == pending
        assert 0 <= streak.retry_delay() <= nacks.RETRY_MAX


def test_streak__an_event_nacked_for_good_keeps_the_relay_quiet(caplog):
    caplog.set_level(logging.WARNING, logger="relay.nacks")
    streak = nacks.Streak()
    streak.record([1, 2, 3], {1})
    for batch in range(100):  # the full queue's event goes with other traffic, and again alone
        streak.record([10 + batch], set())
        streak.record([1], {1})
    assert not streak.refusing and streak.since is not None
    assert streak.retry_delay() == nacks.RETRY_MAX
    assert len(caplog.records) == 1
    streak.record([1], set())  # the queue took it at last
    assert streak.since is None and len(caplog.records) == 2
    assert "101 nacks in 101 batches" in caplog.records[1].getMessage()
