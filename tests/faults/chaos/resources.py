"""The chaos run's own databases and broker objects: created up front, removed at the end.

The master and replica databases are created empty, the master is migrated with the test
project, and the replica is cloned from it. The replica gets a revision log: a trigger on
the replica table records every insert, update and delete with the old and new revision,
so the checks can replay what the replica went through, not only where it ended.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pika
import psycopg2

from cqrs_outbox.replica import topology
from tests.support.processes import ROOT

SETTINGS = "tests.testproject.settings"
CQRS_ID = "chaos_item"
MASTER_TABLE = "chaos_item"
REPLICA_TABLE = "chaos_itemcopy"
LOG_TABLE = "chaos_revision_log"
MIGRATE_TIMEOUT = 120  # seconds

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
PG_USER = os.environ.get("PGUSER", "postgres")

REVISION_LOG_SQL = f"""
CREATE TABLE {LOG_TABLE} (
    seq bigserial PRIMARY KEY,
    pk bigint NOT NULL,
    op text NOT NULL,
    old_revision integer,
    new_revision integer
);
CREATE FUNCTION {LOG_TABLE}_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {LOG_TABLE} (pk, op, new_revision) VALUES (NEW.id, TG_OP, NEW.cqrs_revision);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO {LOG_TABLE} (pk, op, old_revision, new_revision)
        VALUES (NEW.id, TG_OP, OLD.cqrs_revision, NEW.cqrs_revision);
    ELSE
        INSERT INTO {LOG_TABLE} (pk, op, old_revision) VALUES (OLD.id, TG_OP, OLD.cqrs_revision);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {LOG_TABLE}_record AFTER INSERT OR UPDATE OR DELETE ON {REPLICA_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {LOG_TABLE}_record();
"""


@dataclass(frozen=True)
class Names:
    """Everything the run creates, named after its run id."""

    run_id: str

    @property
    def master_db(self) -> str:
        return f"chaos_{self.run_id}_master"

    @property
    def replica_db(self) -> str:
        return f"chaos_{self.run_id}_replica"

    @property
    def exchange(self) -> str:
        return f"chaos_{self.run_id}"

    @property
    def queue(self) -> str:
        return f"chaos_{self.run_id}_replica"

    @property
    def tap_queue(self) -> str:
        return f"chaos_{self.run_id}_tap"

    def topology(self) -> topology.Names:
        """Return the replica's broker names, as its settings derive them."""
        return topology.Names(
            exchange=self.exchange, queue=self.queue,
            dead_letter_queue=f"dead_letter_{self.queue}",
            delay_queue=f"{self.queue}{topology.DELAY_SUFFIX}",
        )


# -- PostgreSQL -------------------------------------------------------------------------


@contextlib.contextmanager
def connect(database: str = "postgres") -> Iterator:
    """Open an autocommit psycopg2 connection straight to PostgreSQL (no proxy)."""
    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database,
                                  password=os.environ.get("PGPASSWORD", ""))
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def query(database: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Run one query on `database` and return its rows."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def create_databases(names: Names, env: dict[str, str]) -> None:
    """Create and migrate the master; clone it as the replica and add the revision log."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{names.master_db}"')
    done = subprocess.run(
        [sys.executable, "-m", "django", "migrate", f"--settings={SETTINGS}", "-v0"],
        cwd=ROOT, env={**os.environ, **env, "CQRS_TEST_DB_NAME": names.master_db},
        capture_output=True, text=True, timeout=MIGRATE_TIMEOUT,
    )
    if done.returncode:
        raise RuntimeError(f"migrating {names.master_db} failed:\n{done.stdout}{done.stderr}")
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{names.replica_db}" TEMPLATE "{names.master_db}"')
    with connect(names.replica_db) as connection, connection.cursor() as cursor:
        cursor.execute(REVISION_LOG_SQL)


def drop_databases(names: Names) -> None:
    """Drop both databases, whoever is still connected to them."""
    with connect() as connection, connection.cursor() as cursor:
        for database in (names.replica_db, names.master_db):
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- RabbitMQ ---------------------------------------------------------------------------


def declare_broker(names: Names) -> None:
    """Declare the exchange and the replica's queues before anything publishes.

    The relays publish with `mandatory`: an event sent before any queue is bound would
    come back unroutable. A real replica service declares its queue once and keeps it;
    this does that once for the consumers the run kills and restarts.
    """
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        topology.declare(connection.channel(), names.topology(), [CQRS_ID])
    finally:
        connection.close()


def queue_counts(names: Names) -> dict[str, int]:
    """Return the messages ready in the work, delay and dead-letter queues."""
    broker = names.topology()
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        return {
            queue: channel.queue_declare(queue, passive=True).method.message_count
            for queue in (broker.queue, broker.delay_queue, broker.dead_letter_queue)
        }
    finally:
        connection.close()


def dead_letter_reasons(names: Names, limit: int = 5) -> list[str]:
    """Return the reasons of the first dead letters (they stay in their queue)."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    reasons = []
    try:
        channel = connection.channel()
        for _ in range(limit):
            method, properties, body = channel.basic_get(names.topology().dead_letter_queue)
            if method is None:
                break
            headers = properties.headers or {}
            reasons.append(f"{headers.get('cqrs-reason')}: {body[:200]!r}")
    finally:
        connection.close()  # unacknowledged: the messages go back to the queue
    return reasons


def delete_broker(names: Names) -> None:
    """Delete the queues and the exchange of the run."""
    broker = names.topology()
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        for queue in (broker.queue, broker.delay_queue, broker.dead_letter_queue,
                      names.tap_queue):
            channel.queue_delete(queue)
        channel.exchange_delete(names.exchange)
    finally:
        connection.close()
