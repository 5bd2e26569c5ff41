"""Databases of the django-cqrs peer projects, and ways to publish our outbox."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import psycopg2

from cqrs_outbox.core import wire
from cqrs_outbox.models import OutboxEvent
from tests.acceptance.replica import support

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
    "password": os.environ.get("PGPASSWORD", ""),
}


@contextlib.contextmanager
def database(settings: str) -> Iterator[str]:
    """Create a database for a peer project, build its tables, and drop it afterwards."""
    name = support.unique("cqrs_peer")
    _admin(f'CREATE DATABASE "{name}"')
    try:
        support.run_django(["migrate", "--run-syncdb", "-v", "0"], settings,
                           {"CQRS_PEER_DB_NAME": name})
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PEER_REPLICA = "tests.peers.replica_settings"  # django-cqrs's replica project


@contextlib.contextmanager
def replica_worker(names: Any, master_database: str, log_dir: Path) -> Iterator[str]:
    """Run django-cqrs's `cqrs_consume` on a fresh peer replica database bound to the
    test's exchange and queue, publish `master_database`'s outbox to it as our relay does,
    and yield the peer's database. On the way out the worker must still be alive."""
    with database(PEER_REPLICA) as db:
        env = {"CQRS_PEER_DB_NAME": db, "CQRS_TEST_EXCHANGE": names.exchange,
               "CQRS_TEST_QUEUE": names.queue}
        # django-cqrs declares the queue our topology declared: it must not fail.
        peer = support.django(["cqrs_consume"], PEER_REPLICA, env, log_dir / "peer.log")
        try:
            publish_outbox(master_database, names.exchange, log_dir / "relay.log")
            yield db
            assert peer.alive, peer.log
        finally:
            peer.terminate()
            peer.close()


def rows(database: str, sql: str) -> list[tuple]:
    """Run a query in a peer's database."""
    with contextlib.closing(psycopg2.connect(dbname=database, **PG)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _admin(sql: str) -> None:
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _our_database_url(database: str) -> str:
    """Return the URL of our master's `database`, on the test run's database server."""
    from django.db import connection

    if connection.vendor == "mysql":
        s = connection.settings_dict
        return f"mysql://{s['USER']}@{s['HOST']}:{s['PORT']}/{database}"
    return f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}"


def publish_outbox(database: str, exchange: str, log: Path) -> None:
    """Publish the pending outbox rows of `database` as our relay does.

    With the relay engine present this is `python -m relay --once`, a process of its own;
    otherwise the rows are sent here with pika, with the relay's message properties.
    """
    if (support.ROOT / "relay" / "__main__.py").exists():
        url = _our_database_url(database)
        relay = support.Process(
            ["-m", "relay", "--once", "--no-listen", "--database-url", url,
             "--broker-url", support.BROKER_URL, "--exchange", exchange], {}, log)
        assert relay.wait() == 0, relay.log
        relay.close()
        return
    connection = pika.BlockingConnection(pika.URLParameters(support.BROKER_URL))
    channel = connection.channel()
    channel.confirm_delivery()
    for event in OutboxEvent.objects.order_by("id"):
        channel.basic_publish(
            exchange, event.routing_key, event.payload.encode(), mandatory=True,
            properties=pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=wire.DELIVERY_MODE_PERSISTENT,
                message_id=str(event.id),
            ),
        )
    connection.close()
