"""`cqrs_relay` and `cqrs_consume` print one start-up line under startproject's LOGGING.

The line says what the worker connects to (passwords masked), its batch sizes and the
database driver. PostgreSQL trusts local connections here, so a password in PGPASSWORD is
sent and ignored: it only has to stay out of the output.
"""

import os
import signal
import subprocess
import sys

import pika
import pytest
from django.conf import settings
from django.db import connection

from cqrs_outbox import store
from tests.integration.relay import support
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
]

SECRET = "s3cret-Pw"


class Command:
    """`python -m django <command>` with stdout and stderr each in a file of its own."""

    def __init__(self, tmp_path, env, *argv):
        self.out, self.err = tmp_path / "out.log", tmp_path / "err.log"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", *argv], stdout=out, stderr=err,
                cwd=support.ROOT, env=env, start_new_session=True,
            )

    def first_line(self):
        wait_until(lambda: self.out.read_text().strip() or self.process.poll() is not None,
                   what="the start-up line")
        assert self.out.read_text().strip(), self.err.read_text()
        return self.out.read_text().splitlines()[0]

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(60)


def _env(**extra):
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.testproject.startproject_settings",
        CQRS_TEST_DB_NAME=connection.settings_dict["NAME"],
        PGPASSWORD=SECRET,
        **extra,
    )


def _database():
    s = connection.settings_dict
    driver = store.driver_version(connection.Database.__name__.split(".")[0])
    return f"default postgresql://{s['USER']}:***@{s['HOST']}:{s['PORT']}/{s['NAME']} ({driver})"


def test_cqrs_relay__prints_where_it_connects_batch_and_driver(tmp_path, exchange):
    command = Command(tmp_path, _env(CQRS_TEST_EXCHANGE=exchange), "cqrs_relay",
                      "--batch-size", "7", "--poll-interval", "600")
    try:
        line = command.first_line()
    finally:
        assert command.stop() == 0, command.err.read_text()
    owner = line.split()[1].rstrip(":")
    assert line == (
        f"relay {owner}: database {_database()}, broker amqp://guest:***@127.0.0.1:5672/%2F, "
        f"exchange {exchange}, batch 7, poll 600s, LISTEN/NOTIFY"
    )
    assert SECRET not in command.out.read_text() + command.err.read_text()


def test_cqrs_consume__prints_its_queue_broker_batch_prefetch_and_driver(tmp_path):
    queue = support.unique("startup_q")
    exchange = support.unique("startup_ex")
    command = Command(tmp_path, _env(CQRS_TEST_QUEUE=queue, CQRS_TEST_EXCHANGE=exchange),
                      "cqrs_consume", "-w", "1", "--batch-size", "5", "--prefetch-count", "9")
    try:
        line = command.first_line()
        wait_until(lambda: _consumers(queue), what="the worker to consume")
    finally:
        assert command.stop() == 0, command.err.read_text()
        _delete(exchange, queue, f"{queue}.delay", f"dead_letter_{queue}")
    # Django's default LOGGING shows no INFO, yet the worker's stop line is on stderr.
    assert (
        f"INFO cqrs_outbox.replica.status: Worker {command.process.pid} stopped on queue "
        f"{queue}, its last batch acknowledged; since its start: 0 applied, 0 skipped, "
        "0 dead-lettered, 0 retried, lag -"
    ) in command.err.read_text()
    assert line == (
        f"consuming queue {queue} from exchange {exchange} at "
        f"amqp://guest:***@127.0.0.1:5672/%2F: 1 worker(s), batch 5, prefetch 9, "
        f"signatures off, database {_database()}"
    )
    assert SECRET not in command.out.read_text() + command.err.read_text()
    assert settings.CQRS["url"].startswith("amqp://guest:guest@")  # what *** stands for


def _consumers(queue):
    conn = pika.BlockingConnection(pika.URLParameters(support.BROKER_URL))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:  # not declared yet
        return 0
    finally:
        conn.close()


def _delete(exchange, *queues):
    conn = pika.BlockingConnection(pika.URLParameters(support.BROKER_URL))
    try:
        channel = conn.channel()
        for queue in queues:
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)
    finally:
        conn.close()
