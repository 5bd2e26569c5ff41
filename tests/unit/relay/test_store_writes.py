"""Settling, retrying or replaying an empty list of ids: the store's writes that the drain
tests never make with nothing to write."""

import datetime

from relay import store


def test_settling_or_replaying_no_ids__changes_no_row_and_counts_none(outbox):
    """An empty list (a batch whose every row was skipped, an admin selection of nothing)
    counts 0 rows settled, retried or replayed, and leaves the outbox as it was."""
    outbox.add("author", 1)
    now = datetime.datetime.now(datetime.timezone.utc)
    before = outbox.rows()
    assert store.mark_published(outbox.db, [], now) == 0
    assert store.retry_failed(outbox.db, []) == 0
    assert store.replay(outbox.db, []) == 0
    assert outbox.rows() == before
