"""What `--metrics-port` costs: relay drain and replica apply rates with metrics on and off.

1. Relay: `python -m relay --once` drains the same number of pending events, with and
   without `--metrics-port`, rounds alternating (off, on, off, on, ...); the rate runs
   from the first batch marked published to the last, as in `bench/relay.py`.
2. Replica: `cqrs_consume` (one worker) applies the same queued events with and without
   `--metrics-port`, rounds alternating; the clock runs from the first message taken to
   the last revision of every row in its database, as in `bench/replica.py`.

Each run prints the median rates and their ratio on/off (target: at least 0.95), and
the CPU time the relay or worker process spent per 1,000 events, which a machine busy
with other work disturbs far less than it does the rates. Last, the CPU the observers
themselves spend per event (called here in a loop, as the relay and the worker call
them per batch), beside the per-event CPU of the processes measured above.

    python bench/metrics_overhead.py [--events 50000] [--rows 4000] [--revisions 5]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CQRS_TEST_DB", "postgres")
os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_bench_{uuid.uuid4().hex[:8]}")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"

import django  # noqa: E402

django.setup()

import pika  # noqa: E402
import psycopg2  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from bench import replica  # noqa: E402
from cqrs_outbox.core import contract, wire  # noqa: E402

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
T = contract.OUTBOX_TABLE
BODY_SQL = (  # a small model's SAVE body, about 330 bytes
    "'{\"signal_type\":\"SAVE\",\"cqrs_id\":\"author\",\"instance_data\":{\"id\":' || g || "
    "',\"name\":\"author number ' || g || ' with a name of ordinary length\",' || "
    "'\"email\":\"author' || g || '@example.com\",\"cqrs_revision\":0,' || "
    "'\"cqrs_updated\":\"2026-01-01 00:00:00.000000+00:00\"},\"previous_data\":null,' || "
    "'\"instance_pk\":' || g || ',\"correlation_id\":null,\"retries\":0,' || "
    "'\"expires\":null,\"meta\":null}'"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def query(sql: str, params: tuple = ()) -> list:
    conn = psycopg2.connect(database_url())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def fill(count: int) -> int:
    """Insert `count` pending events in one statement; return the first new id."""
    start = query(f"SELECT coalesce(max(id), 0) + 1 FROM {T}")[0][0]
    query(
        f"INSERT INTO {T} (cqrs_id, instance_pk, signal_type, revision, partition, "
        "routing_key, payload, status, attempts, available_at, last_error, created_at) "
        f"SELECT 'author', g::text, 'SAVE', 0, g %% {contract.PARTITIONS}, 'author', "
        f"{BODY_SQL}, 'pending', 0, now(), '', now() FROM generate_series(%s, %s) AS g",
        (start, start + count - 1),
    )
    return start


def child_cpu() -> float:
    """Return the CPU seconds (user and system) of this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def relay_rate(exchange: str, events: int, metrics: bool) -> float:
    """Drain `events` new pending events with `python -m relay --once`; return events/s."""
    start = fill(events)
    extra = ["--metrics-port", str(free_port())] if metrics else []
    done = subprocess.run(
        [sys.executable, "-m", "relay", "--database-url", database_url(), "--broker-url",
         BROKER_URL, "--exchange", exchange, "--log-level", "WARNING", "--once", *extra],
        cwd=ROOT, check=False,
    )
    if done.returncode != 0:
        raise SystemExit("the relay failed")
    (first, last), = query(f"SELECT min(published_at), max(published_at) FROM {T} "
                           "WHERE status = 'published' AND id >= %s", (start,))
    (batch,), = query(f"SELECT count(*) FROM {T} WHERE published_at = %s AND id >= %s",
                      (first, start))
    return (events - batch) / (last - first).total_seconds()


def relay_overhead(events: int, rounds: int) -> tuple[float, float, float, float]:
    """Return the median drain rates (off, on) and CPU seconds per 1,000 events (off, on)."""
    exchange = f"cqrs_bench_{uuid.uuid4().hex[:8]}"
    queue = f"{exchange}_q"
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(BROKER_URL))) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_declare(queue, durable=True)  # uncapped; emptied between rounds
        channel.queue_bind(queue, exchange, "#")
        rates: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        try:
            for _ in range(rounds):
                for metrics in (False, True):
                    before = child_cpu()
                    rates[metrics].append(relay_rate(exchange, events, metrics))
                    cpu[metrics].append((child_cpu() - before) * 1000 / events)
                    channel.queue_purge(queue)
        finally:
            channel.queue_delete(queue)
            channel.exchange_delete(exchange)
    return (statistics.median(rates[False]), statistics.median(rates[True]),
            statistics.median(cpu[False]), statistics.median(cpu[True]))


def replica_overhead(rows: int, revisions: int, rounds: int
                     ) -> tuple[float, float, float, float]:
    """Return the median apply rates (off, on) of one worker and its CPU seconds per 1,000
    events (off, on), start-up included."""
    broker = replica.Broker()
    total = rows * revisions
    seconds: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    try:
        with replica.database(replica.OURS, "CQRS_TEST_DB_NAME") as db:
            for n in range(rounds):
                for metrics in (False, True):
                    queue = broker.queue(f"bench_metrics_{int(metrics)}_{n}_{replica.RUN}")
                    broker.fill(rows, revisions, {queue: total})
                    broker.unbind(queue)
                    replica.sql(db, "TRUNCATE replica_authorref", autocommit=True)
                    extra = ("--metrics-port", str(free_port())) if metrics else ()
                    before = child_cpu()
                    elapsed, _ = replica.run_ours(broker, queue, db, rows, revisions, extra)
                    cpu[metrics].append((child_cpu() - before) * 1000 / total)
                    seconds[metrics].append(elapsed)
    finally:
        broker.close()
    return (total / statistics.median(seconds[False]), total / statistics.median(seconds[True]),
            statistics.median(cpu[False]), statistics.median(cpu[True]))


def report(what: str, off: float, on: float, cpu_off: float, cpu_on: float) -> None:
    print(f"{what}: metrics off {off:8.0f} events/s, on {on:8.0f} events/s, "
          f"ratio on/off {on / off:.3f}; CPU per 1,000 events off {cpu_off:.3f} s, "
          f"on {cpu_on:.3f} s, ratio on/off {cpu_on / cpu_off:.3f}")


def observer_cost() -> tuple[float, float]:
    """Return the CPU microseconds per event of the relay's and the replica's observers."""
    import prometheus_client

    from cqrs_outbox import store
    from cqrs_outbox.replica import telemetry
    from relay import metrics as relay_metrics

    now = datetime.datetime.now(datetime.timezone.utc)
    relay_observer = relay_metrics.RelayMetrics("bench", prometheus_client.CollectorRegistry())
    rows = [store.Pending(i, i % 64, "author", "", 0, now, "author", now) for i in range(500)]
    began = time.process_time()
    for _ in range(200):
        relay_observer.settled(rows, set(), time.monotonic(), now)
    relay_us = (time.process_time() - began) / (200 * len(rows)) * 1e6
    envelope = wire.Envelope("SAVE", "author", {"id": 1, "cqrs_updated": str(now)}, 1)
    with telemetry.serving(free_port()):  # multiprocess mode, as the workers run
        observer = telemetry.observer("bench")
        began = time.process_time()
        for _ in range(200):
            for _ in range(250):
                observer.acknowledged(envelope, "")
            observer.batch(0.01)
            observer.turned()
        replica_us = (time.process_time() - began) / (200 * 250) * 1e6
    return relay_us, replica_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per relay round")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--revisions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating")
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        relay_figures = relay_overhead(args.events, args.rounds)
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
    report(f"relay drain, {args.events} events x {args.rounds} rounds", *relay_figures)
    replica_figures = replica_overhead(args.rows, args.revisions, args.rounds)
    report(f"replica apply, {args.rows * args.revisions} events x {args.rounds} rounds",
           *replica_figures)
    relay_us, replica_us = observer_cost()
    relay_share = relay_us / (relay_figures[2] * 1000)
    replica_share = replica_us / (replica_figures[2] * 1000)
    print(f"observer CPU per event: relay {relay_us:.2f} us ({relay_share:.1%} of the "
          f"relay's {relay_figures[2] * 1000:.0f} us), replica {replica_us:.2f} us "
          f"({replica_share:.1%} of the worker's {replica_figures[2] * 1000:.0f} us)")


if __name__ == "__main__":
    main()
