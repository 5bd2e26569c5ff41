"""Small pieces of the relay: batch cutting, status text, URL and error handling."""

import datetime
import sqlite3

from cqrs_outbox import store
from cqrs_outbox.core import urls
from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable
from cqrs_outbox.store import dbapi
from relay import engine, status

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _row(event_id, partition, wait=0):
    return store.Pending(
        event_id, partition, "author", "{}", 0, NOW + datetime.timedelta(seconds=wait)
    )


def test_batch__stops_a_partition_at_its_first_event_that_must_wait():
    rows = [_row(3, 1), _row(1, 1), _row(2, 2, wait=10), _row(4, 2), _row(5, 1)]
    batch = engine.Batch.ready(rows, NOW)
    assert [r.id for r in batch.rows] == [1, 3, 5]
    assert batch.cursors() == {1: 5}


def test_status__shows_counts_age_and_owners_without_expired_leases():
    owners = tuple(
        store.PartitionOwner(p, "relay-a", NOW + datetime.timedelta(seconds=20))
        for p in (0, 1, 2, 5)
    ) + (store.PartitionOwner(9, "dead", NOW - datetime.timedelta(seconds=1)),)
    summary = store.Summary(7, 2, NOW - datetime.timedelta(seconds=90), owners)
    text = status.render(summary, NOW)
    assert "pending: 7" in text
    assert "failed: 2" in text
    assert "oldest pending age: 90.0s" in text
    assert "partitions held: 4 of 64" in text
    assert "relay-a: 4 partitions (0-2, 5), lease ends in 20s" in text
    assert "dead" not in text


def test_status__counts_returned_events_per_routing_key_and_says_what_to_do():
    summary = store.Summary(0, 0, None, (), (("author", 3), ("cqrs.q.book", 1)))
    lines = status.render(summary, NOW).splitlines()
    at = lines.index("returned (unroutable): 4")
    assert lines[at + 1 : at + 4] == [
        "  routing key author: 3 returned, no queue was bound",
        "  routing key cqrs.q.book: 1 returned, no queue was bound",
        f"  {status.REPLAY_HINT}",
    ]


def test_status__empty_outbox():
    text = status.render(store.Summary(0, 0, None, ()), NOW)
    assert "returned (unroutable): 0" in text and "routing key" not in text
    assert "oldest pending age: -" in text
    assert "partitions held: 0 of 64" in text


def test_translate__connection_errors_are_recoverable_missing_tables_fatal():
    away = dbapi.translate(sqlite3.OperationalError("disk I/O error"))
    missing = dbapi.translate(sqlite3.OperationalError("no such table: cqrs_outbox_event"))
    assert isinstance(away, DatabaseUnavailable)
    assert isinstance(missing, ConfigurationError)
    assert dbapi.translate(ValueError("not a database error")) is None


def test_describe__masks_the_password_of_a_url():
    url = "postgresql://app:s3cret@db/app"
    assert "s3cret" not in urls.describe(RuntimeError(f"failed for {url}"), url)


def test_timestamp__sqlite_gets_naive_utc_text_as_django_writes_it(tmp_path):
    path = tmp_path / "x.sqlite3"
    path.touch()
    db = store.connect(f"sqlite:///{path}")
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    local = datetime.datetime(2026, 1, 1, 3, 0, tzinfo=plus_two)
    assert db.timestamp(local) == "2026-01-01 01:00:00.000000"
    db.close()
