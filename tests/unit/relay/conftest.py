"""Relay unit tests: SQLite files and the in-memory stub broker, no Django, no services.

The schema below is the SQLite form of the app's migrations (an integration test checks
that the two agree), so these tests run where Django cannot even be imported.
"""

import datetime
import logging

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract, wire
from relay import engine
from relay.publisher import StubPublisher

SCHEMA = [
    'CREATE TABLE "cqrs_outbox_lease" ("partition" smallint NOT NULL PRIMARY KEY, '
    '"owner" varchar(255) NOT NULL, "token" varchar(64) NOT NULL, "expires_at" datetime NULL)',
    'CREATE TABLE "cqrs_outbox_event" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"cqrs_id" varchar(255) NOT NULL, "instance_pk" varchar(255) NOT NULL, '
    '"signal_type" varchar(8) NOT NULL, "revision" bigint NOT NULL, '
    '"partition" smallint NOT NULL, "routing_key" varchar(512) NOT NULL, '
    '"payload" text NOT NULL, "correlation_id" varchar(255) NULL, '
    '"signature" varchar(255) NULL, '
    '"status" varchar(10) NOT NULL, "attempts" integer NOT NULL, '
    '"available_at" datetime NOT NULL, "last_error" text NOT NULL, '
    '"created_at" datetime NOT NULL, "published_at" datetime NULL, '
    '"traceparent" varchar(64) NULL, "tracestate" varchar(512) NULL, '
    '"returned_at" datetime NULL)',
    'CREATE INDEX "cqrs_outbox_pending_idx" ON "cqrs_outbox_event" ("partition", "id") '
    "WHERE \"status\" = 'pending'",
    'CREATE INDEX "cqrs_outbox_published_idx" ON "cqrs_outbox_event" ("published_at") '
    "WHERE \"status\" = 'published'",
    'CREATE INDEX "cqrs_outbox_returned_idx" ON "cqrs_outbox_event" ("routing_key", "id") '
    'WHERE "returned_at" IS NOT NULL',
]


class Outbox:
    """A SQLite outbox file: write events, read rows back."""

    def __init__(self, path):
        self.url = f"sqlite:///{path}"
        path.touch()
        self.db = store.connect(self.url)
        self.opened = [self.db]
        for statement in SCHEMA:
            self.db.rowcount(statement)

    def connect(self):
        """Open another connection; `close()` closes it (a relay never closes its own)."""
        db = store.connect(self.url)
        self.opened.append(db)
        return db

    def close(self):
        # Python 3.13's sqlite3 warns about connections left to the garbage collector,
        # and the warning lands in whichever test runs then.
        for db in self.opened:
            db.close()

    def add(self, cqrs_id, pk, revision=0, queue=None, created=None):
        """Insert one pending SAVE event; return its id."""
        body = wire.Envelope(
            signal_type="SAVE",
            cqrs_id=cqrs_id,
            instance_data={"id": pk, "cqrs_revision": revision},
            instance_pk=pk,
        ).to_json()
        now = self.db.timestamp(created or datetime.datetime.now(datetime.timezone.utc))
        cursor = self.db.execute(
            "INSERT INTO cqrs_outbox_event (cqrs_id, instance_pk, signal_type, revision, "
            "partition, routing_key, payload, correlation_id, status, attempts, available_at, "
            "last_error, created_at) VALUES (%s, %s, 'SAVE', %s, %s, %s, %s, NULL, 'pending', "
            "0, %s, '', %s)",
            (cqrs_id, str(pk), revision, contract.partition_for(cqrs_id, pk),
             contract.routing_key(cqrs_id, queue), body, now, now),
        )
        return cursor.lastrowid

    def rows(self):
        """Return every event as a dict, oldest first."""
        cursor = self.db.execute("SELECT * FROM cqrs_outbox_event ORDER BY id")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def statuses(self):
        return [row["status"] for row in self.rows()]

    def leases(self):
        return self.db.fetchall(
            "SELECT partition, owner FROM cqrs_outbox_lease WHERE partition >= 0 "
            "ORDER BY partition"
        )


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.close()


@pytest.fixture
def stub():
    return StubPublisher()


@pytest.fixture
def make_relay(outbox, stub):
    """Return a function building a relay on the outbox and the stub broker."""

    def make(publisher=None, **config):
        config.setdefault("poll_interval", 0.05)
        return engine.Relay(outbox.connect, publisher or stub, engine.Config(**config))

    return make


@pytest.fixture
def relay_logs(caplog):
    caplog.set_level(logging.INFO, logger="relay")
    return caplog
