"""Processes, queues and databases for the operator tools' end-to-end tests.

Every command runs as a process of its own (`python -m django ...`, `python -m relay`),
against the test databases pytest-django created, with an exchange and replica queue
unique to the test. django-cqrs's own commands run with the peer projects' settings
(tests/peers) in scratch databases the tests create and drop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pika
import psycopg2
import pytest

from tests.support import names

ROOT = Path(__file__).resolve().parents[3]
BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
    "password": os.environ.get("PGPASSWORD", ""),
}
WAIT = 60.0  # seconds a test waits for a process to get somewhere before failing
OURS = "tests.testproject.settings"
PEER_MASTER = "tests.peers.master_settings"
PEER_REPLICA = "tests.peers.replica_settings"


unique = names.unique




class Services:
    """How a test's processes reach its databases and broker names."""

    def __init__(self, test_db: str, exchange: str, queue: str) -> None:
        self.test_db = test_db
        self.exchange = exchange
        self.queue = queue

    def env(self, settings: str = OURS, **extra: str) -> dict:
        """Return a child's environment for `settings` (ours unless a peer's)."""
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings, PYTHONPATH=str(ROOT))
        env.update(
            CQRS_TEST_DB="postgres",
            CQRS_TEST_DB_NAME=self.test_db,
            CQRS_TEST_EXCHANGE=self.exchange,
            CQRS_TEST_QUEUE=self.queue,
            CQRS_BROKER_URL=BROKER_URL,
        )
        env.update(extra)
        return env

    def django(
        self, *args: str, settings: str = OURS, stdin: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess:
        """Run one management command to its end."""
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env(settings, **extra),
            timeout=WAIT * 2,
        )

    def python(self, *args: str) -> subprocess.CompletedProcess:
        """Run `python <args>` (e.g. `-m relay ...`) to its end, with our settings."""
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env(),
            timeout=WAIT * 2,
        )

    def pipeline(self, *commands: list[str], settings: str = OURS) -> subprocess.CompletedProcess:
        """Run `python -m django A | python -m django B | ...` through the shell."""
        python = shlex.quote(sys.executable)
        line = " | ".join(
            f"{python} -m django " + " ".join(shlex.quote(a) for a in command)
            for command in commands
        )
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env(settings),
            timeout=WAIT * 2,
        )

    def relay_once(self) -> None:
        """Publish every pending outbox row with the standalone relay, then stop."""
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.test_db}"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "relay",
                "--once",
                "--no-listen",
                "--database-url",
                url,
                "--broker-url",
                BROKER_URL,
                "--exchange",
                self.exchange,
                "--log-level",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env(),
            timeout=WAIT * 2,
        )
        assert result.returncode == 0, result.stderr

    @contextlib.contextmanager
    def consumer(self):
        """Run `cqrs_consume` for the test's replica queue until the block ends.

        Yields a function returning what the consumer logged so far, for failure messages.
        """
        with tempfile.TemporaryFile("w+") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "django", "cqrs_consume", "-w", "1"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=self.env(),
                start_new_session=True,
            )

            def logged() -> str:
                log.seek(0)
                return log.read()

            try:
                yield logged
            finally:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(WAIT)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()


class Broker:
    """The test's own pika connection: declare, bind, read and clean up."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.queues: list[str] = []

    def replica_queue(self, queue: str, cqrs_ids: list[str]) -> str:
        """Declare `queue` bound as a replica of `cqrs_ids` is (`<id>` and `cqrs.<q>.<id>`)."""
        self.channel.queue_declare(queue, durable=True)
        self.queues.append(queue)
        for cqrs_id in cqrs_ids:
            for key in (cqrs_id, f"cqrs.{queue}.{cqrs_id}"):
                self.channel.queue_bind(queue, self.exchange, key)
        return queue

    def consumers(self, queue: str) -> int:
        """Return how many consumers read `queue` (0 if it does not exist yet)."""
        try:
            return self.channel.queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            self.channel = self.connection.channel()
            return 0

    def take_all(self, queue: str) -> list:
        """Remove and return every message body (decoded JSON) waiting in `queue`."""
        bodies = []
        while True:
            method, _, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(json.loads(body))

    def close(self, extra_queues: tuple[str, ...] = ()) -> None:
        for queue in (*self.queues, *extra_queues):
            self.channel.queue_delete(queue)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


@pytest.fixture
def services():
    """The names of this test's broker objects and the test database's name."""
    from django.db import connection

    test_db = connection.settings_dict["NAME"]
    return Services(test_db, unique("cqrs_ops_ex"), unique("cqrs_ops_replica"))


@pytest.fixture
def broker(services):
    b = Broker(services.exchange)
    yield b
    # The replica's consumer declares its dead-letter and delay queues beside its own.
    satellites = (f"dead_letter_{services.queue}", services.queue, f"{services.queue}.delay")
    b.close(extra_queues=tuple(q for q in satellites if q not in b.queues))


def _admin(sql: str) -> None:
    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@pytest.fixture
def peer_database(services):
    """Return a function creating a django-cqrs peer's database (dropped afterwards)."""
    made = []

    def create(settings: str) -> str:
        name = unique("cqrs_ops_peer")
        _admin(f'CREATE DATABASE "{name}"')
        made.append(name)
        result = services.django(
            "migrate", "--run-syncdb", "-v", "0", settings=settings, CQRS_PEER_DB_NAME=name
        )
        assert result.returncode == 0, result.stderr
        return name

    yield create
    for name in made:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def peer_sql(database: str, sql: str, params: tuple = ()) -> list:
    """Run SQL in a peer's database and return the rows (if any)."""
    with contextlib.closing(psycopg2.connect(dbname=database, **PG)) as conn:
        with conn, conn.cursor() as cursor:
            cursor.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []
