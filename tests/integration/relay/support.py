"""Helpers for relay tests on the real PostgreSQL and RabbitMQ: write events, run relays
as processes, collect what reaches a queue."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract, wire
from tests.support import names

ROOT = Path(__file__).resolve().parents[3]
BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WAIT = 60.0  # seconds a test waits for something before it fails


unique = names.unique




def database_url(host: str | None = None, port: int | None = None, password: str = "") -> str:
    """Return a postgresql:// (or mysql://) URL of the test database, optionally via a proxy."""
    from django.db import connection

    s = connection.settings_dict
    scheme = "mysql" if connection.vendor == "mysql" else "postgresql"
    auth = s["USER"] + (f":{password or s['PASSWORD']}" if password or s["PASSWORD"] else "")
    return f"{scheme}://{auth}@{host or s['HOST']}:{port or s['PORT']}/{s['NAME']}"


@contextlib.contextmanager
def database_url_with_password(password: str) -> Iterator[str]:
    """Yield a URL of the test database carrying `password`, which the database accepts.

    PostgreSQL here trusts local logins and ignores it; on MariaDB a user of this test
    with that password is made, and dropped after.
    """
    from django.db import connection

    if connection.vendor != "mysql":
        yield database_url(password=password)
        return
    user, name = unique("relay_user")[-24:], connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", [user, password])
        cursor.execute(f"GRANT ALL ON `{name}`.* TO %s@'%%'", [user])
    try:
        s = connection.settings_dict
        yield f"mysql://{user}:{password}@{s['HOST']}:{s['PORT']}/{name}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP USER %s@'%%'", [user])


# LISTEN/NOTIFY is PostgreSQL's; on MariaDB the relay polls, and the tests of waking up
# on a notification do not apply.
notify_only = pytest.mark.skipif(
    os.environ.get("CQRS_TEST_DB", "postgres") != "postgres",
    reason="LISTEN/NOTIFY exists on PostgreSQL only",
)


def envelope_json(cqrs_id: str, pk: Any, revision: int) -> str:
    return wire.Envelope(
        signal_type="SAVE",
        cqrs_id=cqrs_id,
        instance_data={"id": pk, "cqrs_revision": revision},
        instance_pk=pk,
    ).to_json()


def write_events(keys: Iterable[tuple[str, Any, int]], chunk: int = 1000) -> list[int]:
    """Insert pending events for (cqrs_id, pk, revision) and commit; return their ids."""
    from django.db import connections

    db = store.wrap(connections["default"])
    ids: list[int] = []
    batch: list[contract.NewEvent] = []
    for cqrs_id, pk, revision in keys:
        batch.append(
            contract.NewEvent(
                cqrs_id=cqrs_id,
                instance_pk=str(pk),
                signal_type="SAVE",
                revision=revision,
                partition=contract.partition_for(cqrs_id, pk),
                routing_key=contract.routing_key(cqrs_id),
                payload=envelope_json(cqrs_id, pk, revision),
            )
        )
        if len(batch) >= chunk:
            ids += store.insert_events(db, batch)
            batch = []
    ids += store.insert_events(db, batch)
    return ids


def outbox_counts() -> dict[str, int]:
    from cqrs_outbox.models import OutboxEvent

    counts = collections.Counter(OutboxEvent.objects.values_list("status", flat=True))
    return dict(counts)


@dataclass(frozen=True)
class Received:
    event_id: int
    routing_key: str
    body: bytes
    properties: Any


class Collector:
    """A queue bound to every routing key of an exchange, and what arrived in it."""

    def __init__(self, exchange: str, url: str = BROKER_URL) -> None:
        self.exchange = exchange
        self.queue = unique("relay_test_q")
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, exchange, "#")
        self.channel.basic_qos(prefetch_count=2000)
        self.received: list[Received] = []
        self.channel.basic_consume(self.queue, self._on_message, auto_ack=True)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.received.append(
            Received(int(properties.message_id), method.routing_key, body, properties)
        )

    def collect(self, expected: Iterable[int], timeout: float = WAIT) -> list[Received]:
        """Read until every expected event id arrived; return everything received so far."""
        wanted = set(expected)
        deadline = time.monotonic() + timeout
        while not wanted <= self.ids():
            if time.monotonic() > deadline:
                missing = sorted(wanted - self.ids())
                raise AssertionError(f"{len(missing)} events never arrived: {missing[:10]}")
            self.connection.process_data_events(time_limit=0.2)
        return self.received

    def settle(self, quiet: float = 1.0) -> list[Received]:
        """Read until nothing arrived for `quiet` seconds (late duplicates, say)."""
        count = -1
        while count != len(self.received):
            count = len(self.received)
            self.connection.process_data_events(time_limit=quiet)
        return self.received

    def pump(self, seconds: float = 0.2) -> int:
        """Read for `seconds`; return how many distinct events arrived so far."""
        self.connection.process_data_events(time_limit=seconds)
        return len(self.ids())

    def ids(self) -> set[int]:
        return {r.event_id for r in self.received}

    def duplicates(self) -> int:
        return len(self.received) - len(self.ids())

    def close(self) -> None:
        try:
            self.channel.queue_delete(self.queue)
            self.channel.exchange_delete(self.exchange)
        finally:
            self.connection.close()


def revisions_by_row(received: Iterable[Received]) -> dict[tuple[str, Any], list[int]]:
    """Return, per (cqrs_id, pk), the revisions in the order they arrived."""
    import json

    rows: dict[tuple[str, Any], list[int]] = {}
    for item in received:
        body = json.loads(item.body)
        key = (body["cqrs_id"], body["instance_pk"])
        rows.setdefault(key, []).append(body["instance_data"]["cqrs_revision"])
    return rows


def first_seen(values: list[int]) -> list[int]:
    """Drop repeats, keeping each value where it first appeared."""
    seen: set[int] = set()
    return [v for v in values if not (v in seen or seen.add(v))]


class RelayProcess:
    """`python -m relay` as a child process, its output in a file."""

    def __init__(self, log_dir: Path, name: str, database: str, exchange: str,
                 *extra: str, broker: str = BROKER_URL) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.args = [
            sys.executable, "-m", "relay", "--database-url", database, "--broker-url", broker,
            "--exchange", exchange, "--owner", name, *extra,
        ]
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> RelayProcess:
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - the child writes it until it ends
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ)
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to release leases or mark the batch in flight."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(WAIT)

    def terminate(self, timeout: float = WAIT) -> int:
        """SIGTERM and wait; return the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return bool(self.process and self.process.poll() is None)


def leases_by_owner() -> dict[str, set[int]]:
    """Return the partitions each relay holds with a lease that has not expired."""
    from django.db import connections

    from cqrs_outbox import store

    db = store.wrap(connections["default"])
    now = store.clock(db)
    held: dict[str, set[int]] = {}
    for row in store.leases(db):
        if row.partition >= 0 and not row.free(now):
            held.setdefault(row.owner, set()).add(row.partition)
    return held


class Writer:
    """A thread that keeps saving master models through the master API until stopped."""

    def __init__(self, pause: float = 0.02) -> None:
        import threading

        self.pause = pause
        self.saves = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        if self.error is not None:
            raise AssertionError(f"the writer failed: {self.error!r}") from self.error

    def _run(self) -> None:
        from django.db import connection

        from tests.testproject.master import models

        try:
            authors: list[Any] = []
            while not self._stop.is_set():
                if len(authors) < 20:
                    authors.append(models.Author.objects.create(name="new"))
                else:
                    author = authors[self.saves % len(authors)]
                    author.name = f"save {self.saves}"
                    author.save()
                self.saves += 1
                self._stop.wait(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by __exit__
            self.error = exc
        finally:
            connection.close()
