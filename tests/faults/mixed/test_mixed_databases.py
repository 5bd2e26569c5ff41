"""A master on one database feeds a replica on the other, through the standalone relay.

MariaDB master -> PostgreSQL replica, and PostgreSQL master -> MariaDB replica. Each
master writes through the model API while its relay is killed with SIGKILL and restarted
and the relay's broker link is cut; at the end the replica holds exactly the master's
rows (pk, name, revision), deleted rows included.

Every piece runs as a process of its own on databases made for the test (dropped after):
the master's writer (`manage.py shell`), `python -m relay` and `cqrs_consume`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pika
import pytest

from cqrs_outbox import store
from cqrs_outbox.replica.topology import DELAY_SUFFIX
from tests.integration.relay import support
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.broker, pytest.mark.slow]

PG = (os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432"),
      os.environ.get("PGUSER", "postgres"))
MY = (os.environ.get("MYSQL_HOST", "127.0.0.1"), os.environ.get("MYSQL_TCP_PORT", "3306"),
      os.environ.get("MYSQL_USER", "root"))
ROWS = 60
ROUNDS = 8  # saves per row, some rows deleted on the way
WRITER = f"""
import random, time
from django.db import transaction
from tests.testproject.master.models import Author
rng = random.Random(7)
authors = [Author.objects.create(name=f"a{{i}}") for i in range({ROWS})]
for round_no in range({ROUNDS}):
    for author in authors:
        if author.pk is None:
            continue
        with transaction.atomic():
            if round_no > 2 and rng.random() < 0.05:
                author.delete()
                author.pk = None
                continue
            author.name = f"a{{author.pk}}-{{round_no}}"
            author.save()
    time.sleep(0.2)
print("writer done")
"""


def _url(kind: str, name: str) -> str:
    host, port, user = MY if kind == "mariadb" else PG
    scheme = "mysql" if kind == "mariadb" else "postgresql"
    return f"{scheme}://{user}@{host}:{port}/{name}"


def _admin(kind: str, sql: str) -> None:
    db = store.connect(_url(kind, "mysql" if kind == "mariadb" else "postgres"))
    try:
        db.rowcount(sql)
    finally:
        db.close()


@contextlib.contextmanager
def _database(kind: str):
    name = f"cqrs_mixed_{uuid.uuid4().hex[:8]}"
    if kind == "mariadb":
        _admin(kind, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    else:
        _admin(kind, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        if kind == "mariadb":
            _admin(kind, f"DROP DATABASE IF EXISTS `{name}`")
        else:
            _admin(kind, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Side:
    """One service: its database kind and name, and its Django processes' environment."""

    def __init__(self, kind: str, name: str, exchange: str, queue: str) -> None:
        self.kind, self.name = kind, name
        self.env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.testproject.settings",
                        CQRS_TEST_DB=kind, CQRS_TEST_DB_NAME=name, CQRS_TEST_EXCHANGE=exchange,
                        CQRS_TEST_QUEUE=queue, PYTHONPATH=str(support.ROOT))

    def django(self, *args: str, **popen) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "django", *args], cwd=support.ROOT,
                                env=self.env, start_new_session=True, **popen)

    def migrate(self) -> None:
        done = self.django("migrate", "-v", "0", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        out, _ = done.communicate(timeout=300)
        assert done.returncode == 0, out

    def rows(self, table: str) -> set:
        db = store.connect(_url(self.kind, self.name))
        try:
            return set(db.fetchall(f"SELECT id, name, cqrs_revision FROM {table}"))
        finally:
            db.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("master_kind, replica_kind",
                         [("mariadb", "postgres"), ("postgres", "mariadb")])
def test_mixed_databases__replica_converges_after_relay_kill_and_broker_cut(
    master_kind, replica_kind, tmp_path
):
    exchange, queue = support.unique("mixed_ex"), support.unique("mixed_q")
    broker = pika.BlockingConnection(pika.URLParameters(support.BROKER_URL))
    channel = broker.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    # Bound before anything is published, so no event finds the exchange without a queue.
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, "author")
    started: list = []
    try:
        with _database(master_kind) as master_db, _database(replica_kind) as replica_db, \
                TcpProxy("127.0.0.1", int(support.BROKER_URL.rsplit(":", 1)[1].split("/")[0])) \
                as proxy:
            master = Side(master_kind, master_db, exchange, queue)
            replica = Side(replica_kind, replica_db, exchange, queue)
            master.migrate()
            replica.migrate()
            with open(tmp_path / "consumer.log", "w") as consumer_log:
                started.append(replica.django("cqrs_consume", "-w", "1", stdout=consumer_log,
                                              stderr=subprocess.STDOUT))
            relay_options = ("--poll-interval", "0.2", "--lease-ttl", "2", "--batch-size", "50")
            relay = support.RelayProcess(tmp_path, "mixed", _url(master_kind, master_db),
                                         exchange, *relay_options,
                                         broker=proxy.url(support.BROKER_URL)).start()
            writer = master.django("shell", "-c", WRITER, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
            started.append(writer)
            wait_until(lambda: len(replica.rows("replica_authorref")) >= 10,
                       what="first rows on the replica")
            relay.kill()  # SIGKILL mid-drain: no lease released, no batch marked
            time.sleep(0.5)
            relay.start()
            time.sleep(1.0)
            proxy.close()  # the relay's broker link is cut, and stays down a while
            time.sleep(2.0)
            proxy.open()
            out, _ = writer.communicate(timeout=300)
            assert writer.returncode == 0 and "writer done" in out, out
            expected = master.rows("master_author")
            assert len(expected) > ROWS // 2
            wait_until(lambda: replica.rows("replica_authorref") == expected, timeout=120,
                       what=f"the replica on {replica_kind} holding the master's rows")
            assert relay.terminate() == 0, relay.log()
    finally:
        for process in started:
            _stop(process)
        for name in (queue, f"{queue}{DELAY_SUFFIX}", f"dead_letter_{queue}"):
            channel.queue_delete(name)
        channel.exchange_delete(exchange)
        broker.close()
