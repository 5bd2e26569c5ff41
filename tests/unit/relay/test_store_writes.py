"""Settling, retrying or replaying an empty list of ids: the store's writes that the drain
tests never make with nothing to write."""

import datetime

from cqrs_outbox import store


def test_settling_or_replaying_no_ids__changes_no_row_and_counts_none(outbox):
    """An empty list (a batch whose every row was skipped, an admin selection of nothing,
    a flush with nothing queued) counts 0 rows settled, nacked, retried, replayed or
    written, renews and releases no lease, and leaves the outbox as it was."""
    outbox.add("author", 1)
    now = datetime.datetime.now(datetime.timezone.utc)
    before = outbox.rows()
    assert store.mark_published(outbox.db, [], now) == 0
    assert store.mark_nacked(outbox.db, [], "nacked", now) == 0
    assert store.retry_failed(outbox.db, []) == 0
    assert store.replay(outbox.db, []) == 0
    assert store.insert_events(outbox.db, []) == []
    assert store.renew_leases(outbox.db, "relay-a", [], now) == set()
    assert store.release_leases(outbox.db, "relay-a", []) == 0
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


def test_retry_failed__makes_only_the_failed_rows_pending_and_counts_them(outbox):
    """Retrying a selection that holds failed, pending and published events makes the
    failed ones pending again (attempts 0, error cleared) and counts only those; the rest
    keep their status, attempts and error."""
    ids = [outbox.add("author", pk) for pk in range(1, 5)]
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'failed', attempts = 7, last_error = 'nacked' "
        "WHERE id IN (%s, %s)", (ids[0], ids[2]))
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET attempts = 2, last_error = 'refused' WHERE id = %s",
        (ids[1],))
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_event SET status = 'published', attempts = 1 WHERE id = %s",
        (ids[3],))

    assert store.retry_failed(outbox.db, ids) == 2

    rows = {row["id"]: row for row in outbox.rows()}
    assert [(rows[i]["status"], rows[i]["attempts"], rows[i]["last_error"]) for i in ids] == [
        ("pending", 0, ""), ("pending", 2, "refused"), ("pending", 0, ""), ("published", 1, ""),
    ]
    assert store.summary(outbox.db).failed == 0
    # Due again from now, in the naive UTC text the relay's reads compare against.
    for i in (ids[0], ids[2]):
        datetime.datetime.strptime(rows[i]["available_at"], "%Y-%m-%d %H:%M:%S.%f")


def test_insert_events__writes_trace_context_and_signatures_beside_the_plain_ones(outbox):
    """One INSERT of events of which only some are traced or signed stores each event's
    own traceparent, tracestate and signature (NULL where it has none), in order."""
    from cqrs_outbox.core import contract

    def event(pk, **extra):
        return contract.NewEvent(cqrs_id="author", instance_pk=str(pk), signal_type="SAVE",
                                 revision=pk, partition=contract.partition_for("author", pk),
                                 routing_key="author", payload=f'{{"pk":{pk}}}',
                                 correlation_id=None, **extra)

    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ids = store.insert_events(outbox.db, [
        event(1),
        event(2, traceparent=trace, tracestate="vendor=a"),
        event(3, signature="v1;kid=k1;sig=AAAA"),
        event(4, traceparent=trace, tracestate="", signature="v1;kid=k1;sig=BBBB"),
    ])
    rows = {row["id"]: row for row in outbox.rows()}
    assert [(rows[i]["revision"], rows[i]["payload"], rows[i]["traceparent"],
             rows[i]["tracestate"], rows[i]["signature"]) for i in ids] == [
        (1, '{"pk":1}', None, None, None),
        (2, '{"pk":2}', trace, "vendor=a", None),
        (3, '{"pk":3}', None, None, "v1;kid=k1;sig=AAAA"),
        (4, '{"pk":4}', trace, "", "v1;kid=k1;sig=BBBB"),
    ]


def test_rewrite_event__rewrites_a_pending_event_and_leaves_a_settled_one(outbox):
    """A later save in the same transaction rewrites its still-pending event (payload,
    revision, signature) and says so; an event the relay already settled is left as the
    broker got it, and the caller is told to write a new one."""
    from cqrs_outbox.core import contract

    pending, published = outbox.add("author", 1), outbox.add("author", 2)
    outbox.db.rowcount("UPDATE cqrs_outbox_event SET status = 'published' WHERE id = %s",
                       (published,))
    later = contract.NewEvent(cqrs_id="author", instance_pk="1", signal_type="SAVE",
                              revision=3, partition=contract.partition_for("author", 1),
                              routing_key="author", payload='{"later":true}',
                              correlation_id="c-1", signature="v1;kid=k1;sig=CCCC")
    before = {row["id"]: row for row in outbox.rows()}

    assert store.rewrite_event(outbox.db, pending, later) is True
    assert store.rewrite_event(outbox.db, published, later) is False

    after = {row["id"]: row for row in outbox.rows()}
    assert [after[pending][c] for c in ("payload", "revision", "correlation_id", "signature",
                                        "status")] == [
        '{"later":true}', 3, "c-1", "v1;kid=k1;sig=CCCC", "pending"]
    assert after[published] == before[published]
    datetime.datetime.strptime(after[pending]["created_at"], "%Y-%m-%d %H:%M:%S.%f")
