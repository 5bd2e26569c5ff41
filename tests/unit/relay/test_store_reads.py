"""What the relay reads from the store: the headers a pending event carries, and reads
asked for nothing."""

import datetime

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract, signing

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)


def _pending(**extra):
    return store.Pending(id=1, partition=0, routing_key="author", payload="{}", attempts=0,
                         available_at=NOW, **extra)


@pytest.mark.parametrize(("extra", "headers"), [
    ({}, None),
    ({"traceparent": TRACE}, {"traceparent": TRACE}),
    ({"traceparent": TRACE, "tracestate": "vendor=a"},
     {"traceparent": TRACE, "tracestate": "vendor=a"}),
    ({"traceparent": TRACE, "tracestate": ""}, {"traceparent": TRACE}),
    # A trace state means nothing without the parent it belongs to.
    ({"tracestate": "vendor=a"}, None),
    ({"signature": "v1;kid=k1;sig=AAAA"}, {signing.HEADER: "v1;kid=k1;sig=AAAA"}),
    ({"traceparent": TRACE, "signature": "v1;kid=k1;sig=AAAA"},
     {"traceparent": TRACE, signing.HEADER: "v1;kid=k1;sig=AAAA"}),
])
def test_pending_headers__carry_the_trace_context_and_signature_it_has(extra, headers):
    """An event is published with exactly the headers its row holds: a signed event's
    signature (without it, a replica that requires signatures refuses the event), its
    trace context, and no headers at all (None, not an empty table) when it has none."""
    assert _pending(**extra).headers() == headers


def test_read_pending__for_no_partition_or_no_room_reads_nothing(outbox):
    """A relay that holds no partition, or has no room left in its batch, gets no rows."""
    outbox.add("author", 1)
    partition = contract.partition_for("author", 1)
    assert store.read_pending(outbox.db, [], 10) == []
    assert store.read_pending(outbox.db, [(partition, 0)], 0) == []
    assert [p.id for p in store.read_pending(outbox.db, [(partition, 0)], 1)] == [1]


@pytest.mark.parametrize(("vendor", "settings", "url"), [
    ("sqlite", {"NAME": "/srv/app/db.sqlite3"}, "sqlite:////srv/app/db.sqlite3"),
    ("postgresql", {"NAME": "app", "USER": "svc", "PASSWORD": "p@ss:w/rd", "HOST": "db",
                    "PORT": 6432}, "postgresql://svc:p%40ss%3Aw%2Frd@db:6432/app"),
    ("postgresql", {"NAME": "app", "USER": "", "PASSWORD": "", "HOST": "", "PORT": ""},
     "postgresql://localhost/app"),
    ("mysql", {"NAME": "app", "USER": "root", "PASSWORD": "", "HOST": "127.0.0.1",
               "PORT": "3306"}, "mysql://root@127.0.0.1:3306/app"),
])
def test_url_of__names_the_django_database_as_the_relay_opens_it(vendor, settings, url):
    """The URL of a Django database (for `cqrs_relay`'s start-up line, once redacted, and
    for a session of its own) has the user and password quoted, so a password holding
    `@`, `:` or `/` cannot move the host; SQLite's is the file's path."""
    from types import SimpleNamespace

    assert store.url_of(SimpleNamespace(vendor=vendor, settings_dict=settings)) == url


@pytest.mark.parametrize(("url", "name"), [
    ("postgresql://svc:pw@db:5432/orders?sslmode=require&password=hunter2", "orders"),
    ("postgresql://svc:p@ss/word@db/orders", "orders"),  # a password left unencoded
    ("postgresql://db/sales%20eu", "sales eu"),
    ("mysql://root@127.0.0.1:3306/app", "app"),
    ("sqlite:////srv/app/outbox.sqlite3", "outbox.sqlite3"),
    ("host=db port=5432 password=s3cr3t dbname=orders", "orders"),
    ("postgresql://db", "default"),
    ("host=db password=s3cr3t", "default"),
])
def test_database_name__labels_metrics_with_the_name_only(url, name):
    """The relay's metrics carry the database's name as a label: never the host, the user
    or a password, whether the URL holds its password in the query, unencoded, or as a
    libpq keyword; a URL that names no database is labelled `default`."""
    assert store.database_name(url) == name


def test_read_pending__a_batch_filled_by_one_partition_asks_no_other(outbox, monkeypatch):
    """The read walks the held partitions in turn and stops once the batch is full:
    no statement for a partition it has no room for."""
    first = contract.partition_for("a", 1)
    outbox.add("a", 1)
    outbox.add("a", 1, revision=1)
    other = (first + 1) % contract.PARTITIONS
    statements = []
    real = outbox.db.fetchall
    monkeypatch.setattr(outbox.db, "fetchall",
                        lambda sql, params=(): statements.append(params) or real(sql, params))
    rows = store.read_pending(outbox.db, [(first, 0), (other, 0)], 2)
    assert [(p.partition, p.id) for p in rows] == [(first, 1), (first, 2)]
    assert len(statements) == 1


def test_sqlite_store__waits_five_seconds_for_another_writer_lock(outbox):
    """The relay's SQLite connection waits for a writer's lock (as documented, up to
    5 s) instead of failing at once: a write held a moment by another process goes
    through."""
    import sqlite3
    import threading
    import time

    assert outbox.db.fetchall("PRAGMA busy_timeout") == [(5000,)]
    holder = sqlite3.connect(outbox.url[len("sqlite:///"):], isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Thread(target=lambda: (time.sleep(0.3), holder.execute("COMMIT")))
    released.start()
    try:
        event_id = outbox.add("author", 1)
    finally:
        released.join()
        holder.close()
    assert [row["id"] for row in outbox.rows()] == [event_id]
