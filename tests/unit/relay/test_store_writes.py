"""Settling, retrying or replaying an empty list of ids: the store's writes that the drain
tests never make with nothing to write."""

import datetime

from cqrs_outbox import store


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


def test_insert_events_on_sqlite__fills_the_columns_postgresql_defaults(outbox):
    """Where the table has no column defaults (SQLite, MySQL), the INSERT itself sets the
    status, attempts, times and error; the ids come back in the order given, and the times
    in the naive UTC text Django stores, so they compare with the relay's."""
    from cqrs_outbox.core import contract

    events = [contract.NewEvent(cqrs_id="author", instance_pk=str(pk), signal_type="SAVE",
                                revision=0, partition=contract.partition_for("author", pk),
                                routing_key="author", payload="{}", correlation_id=None)
              for pk in (1, 2)]
    ids = store.insert_events(outbox.db, events)
    rows = outbox.rows()
    assert ids == [row["id"] for row in rows] and ids[0] < ids[1]
    for row in rows:
        assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, "")
        datetime.datetime.strptime(row["created_at"], "%Y-%m-%d %H:%M:%S.%f")
        assert row["available_at"] == row["created_at"]
