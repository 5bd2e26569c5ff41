"""Relay throughput, latency and memory, on PostgreSQL and RabbitMQ, from one run.

1. Commit-to-publish latency (measured first, on a quiet broker and database): a writer
   commits one event per transaction at 1,000 per second while the relay runs with
   LISTEN/NOTIFY; a consumer reading a durable queue, as a replica does, notes when
   each arrives.
2. Drain rate: 100,000 pending events drained by `python -m relay` (publisher confirms,
   each batch marked after its confirms), from the first batch marked to the last.
3. Raw rate: the same bodies published with pika alone, in AMQP transactions of 500,
   to the same exchange and queue. The ratio of the two is the relay's overhead.
4. Memory: the relay's resident set, sampled while it drains 1,000,000 pending events,
   and its peak.

In the throughput and memory runs the events land in a durable queue nobody reads,
capped (drop-head) so a long run never fills the broker. Raw and relay rounds
alternate, so machine noise hits both alike.

    python bench/relay.py [--events 100000] [--rounds 2] [--million 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
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

from relay import contract  # noqa: E402

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
TX_BATCH = 500  # messages per AMQP transaction in the raw baseline
QUEUE_CAP = 20000  # messages the bench queue keeps (older ones are dropped)
LATENCY_RATE = 1000  # events per second in the latency run
LATENCY_SECONDS = 12  # seconds of steady load measured (after a second of warm-up)
T = contract.OUTBOX_TABLE

# A body like a small model's SAVE event (about 330 bytes), built in SQL so a million
# rows are inserted in seconds.
BODY_SQL = (
    "'{\"signal_type\":\"SAVE\",\"cqrs_id\":\"author\",\"instance_data\":{\"id\":' || g || "
    "',\"name\":\"author number ' || g || ' with a name of ordinary length\",' || "
    "'\"email\":\"author' || g || '@example.com\",\"cqrs_revision\":0,' || "
    "'\"cqrs_updated\":\"2026-01-01 00:00:00.000000+00:00\"},\"previous_data\":null,' || "
    "'\"instance_pk\":' || g || ',\"correlation_id\":null,\"retries\":0,' || "
    "'\"expires\":null,\"meta\":null}'"
)


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@contextlib.contextmanager
def pg() -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(database_url())
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def fill(count: int, start: int) -> None:
    """Insert `count` pending events (pks start..start+count-1) in one statement."""
    with pg() as conn, conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {T} (cqrs_id, instance_pk, signal_type, revision, partition, "
            "routing_key, payload, status, attempts, available_at, last_error, created_at) "
            f"SELECT 'author', g::text, 'SAVE', 0, g %% {contract.PARTITIONS}, 'author', "
            f"{BODY_SQL}, 'pending', 0, now(), '', now() "
            "FROM generate_series(%s, %s) AS g",
            (start, start + count - 1),
        )
        cur.execute(f"ANALYZE {T}")


def scalar(sql: str, params: tuple = ()) -> object:
    with pg() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


class Broker:
    """The bench's exchange and capped queue."""

    def __init__(self) -> None:
        self.exchange = f"cqrs_bench_{uuid.uuid4().hex[:8]}"
        self.queue = f"{self.exchange}_q"
        self.connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        channel = self.connection.channel()
        channel.exchange_declare(self.exchange, "topic", durable=True)
        channel.queue_declare(self.queue, durable=True, arguments={"x-max-length": QUEUE_CAP})
        channel.queue_bind(self.queue, self.exchange, "#")
        self.channel = channel

    def close(self) -> None:
        # A fresh connection: the first one may have missed its heartbeats meanwhile.
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(BROKER_URL))) as c:
            channel = c.channel()
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.exchange)
        with contextlib.suppress(pika.exceptions.AMQPError):
            self.connection.close()


def relay_process(exchange: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "--database-url", database_url(),
         "--broker-url", BROKER_URL, "--exchange", exchange, "--log-level", "WARNING", *extra],
        cwd=ROOT,
    )


def relay_rate(broker: Broker, events: int, start: int) -> float:
    """Drain `events` pending events with the relay; return events per second."""
    fill(events, start)
    relay = relay_process(broker.exchange, "--once")
    if relay.wait() != 0:
        raise SystemExit("the relay failed")
    first, last, batch = _published_span(start)
    return (events - batch) / (last - first).total_seconds()


def _published_span(start: int) -> tuple:
    """Return when the first and last batch from id `start` on were marked, and the size
    of the first (its events went out before the clock started)."""
    with pg() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT min(published_at), max(published_at) FROM {T} "
            "WHERE status = 'published' AND id >= %s",
            (start,),
        )
        first, last = cur.fetchone()
        cur.execute(f"SELECT count(*) FROM {T} WHERE published_at = %s", (first,))
        return first, last, cur.fetchone()[0]


def raw_rate(broker: Broker, start: int, events: int) -> float:
    """Publish the bodies of events start.. with pika in transactions of 500."""
    with pg() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT payload FROM {T} WHERE id >= %s ORDER BY id LIMIT %s",
                    (start, events))
        bodies = [row[0].encode() for row in cur.fetchall()]
    channel = broker.connection.channel()
    channel.tx_select()
    began = time.perf_counter()
    for i, body in enumerate(bodies, 1):
        properties = pika.BasicProperties(
            content_type=contract.CONTENT_TYPE,
            delivery_mode=contract.DELIVERY_MODE_PERSISTENT,
            message_id=str(i),
        )
        channel.basic_publish(broker.exchange, "author", body, properties, mandatory=True)
        if i % TX_BATCH == 0:
            channel.tx_commit()
    channel.tx_commit()
    elapsed = time.perf_counter() - began
    channel.close()
    return len(bodies) / elapsed


def throughput(broker: Broker, events: int, rounds: int) -> tuple[float, float]:
    relay_rates, raw_rates = [], []
    for _ in range(rounds):
        start = int(scalar(f"SELECT coalesce(max(id), 0) + 1 FROM {T}"))
        relay_rates.append(relay_rate(broker, events, start))
        raw_rates.append(raw_rate(broker, start, events))
    return statistics.median(relay_rates), statistics.median(raw_rates)


class LatencyProbe:
    """Commit events at a steady rate and note when each reaches a queue."""

    def __init__(self, broker: Broker) -> None:
        self.committed: dict[int, float] = {}
        self.arrived: dict[int, float] = {}
        self.queue = f"{broker.exchange}_latency"
        self.exchange = broker.exchange
        self._stop = threading.Event()
        ready = threading.Event()
        self._consumer = threading.Thread(target=self._consume, args=(ready,), daemon=True)
        self._consumer.start()
        ready.wait(10)

    def _consume(self, ready: threading.Event) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        channel = conn.channel()
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, self.exchange, "latency")
        channel.basic_qos(prefetch_count=1000)

        def on_message(ch, method, properties, body):  # noqa: ANN001
            self.arrived[int(properties.message_id)] = time.time()

        channel.basic_consume(self.queue, on_message, auto_ack=True)
        ready.set()
        while not self._stop.is_set():
            conn.process_data_events(time_limit=0.1)
        conn.close()

    def write(self, rate: int, seconds: float) -> None:
        with pg() as conn:
            self._write(conn.cursor(), rate, seconds)

    def _write(self, cur: psycopg2.extensions.cursor, rate: int, seconds: float) -> None:
        began = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            cur.execute(
                f"INSERT INTO {T} (cqrs_id, instance_pk, signal_type, revision, partition, "
                "routing_key, payload, status, attempts, available_at, last_error, "
                "created_at) VALUES ('latency', %s, 'SAVE', 0, %s, 'latency', '{}', "
                "'pending', 0, now(), '', now()) RETURNING id",
                (str(i), contract.partition_for("latency", i)),
            )
            self.committed[cur.fetchone()[0]] = time.time()  # autocommit: committed now

    def stop(self) -> None:
        self._stop.set()
        self._consumer.join(10)
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(BROKER_URL))) as c:
            c.channel().queue_delete(self.queue)


def latency(broker: Broker) -> tuple[float, float, int]:
    # Only the probe's queue, durable and read at once as a replica's, gets these events.
    broker.channel.queue_unbind(broker.queue, broker.exchange, "#")
    relay = relay_process(broker.exchange)
    probe = LatencyProbe(broker)
    try:
        time.sleep(1.0)
        probe.write(LATENCY_RATE, 1.0)  # warm-up, not measured
        warm = set(probe.committed)
        probe.write(LATENCY_RATE, LATENCY_SECONDS)
        deadline = time.monotonic() + 10
        while len(probe.arrived) < len(probe.committed) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        probe.stop()
        relay.terminate()
        relay.wait(30)
        broker.channel.queue_bind(broker.queue, broker.exchange, "#")
    samples = sorted(
        (probe.arrived[i] - t) * 1000
        for i, t in probe.committed.items()
        if i not in warm and i in probe.arrived
    )
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    return p50, p99, len(samples)


def memory(broker: Broker, events: int) -> tuple[list[tuple[int, float]], float, float]:
    """Drain `events` pending events; return (published, RSS MB) samples, peak MB, seconds."""
    start = int(scalar(f"SELECT coalesce(max(id), 0) + 1 FROM {T}"))
    fill(events, start)
    began = time.perf_counter()
    relay = relay_process(broker.exchange, "--once")
    samples, peak = [], 0.0
    while relay.poll() is None:
        status = _proc_status(relay.pid)
        if status:
            peak = max(peak, status.get("VmHWM", 0.0))
            done = events - int(scalar(f"SELECT count(*) FROM {T} WHERE status = 'pending'"))
            if done:  # before its first batch the child may still be starting up
                samples.append((done, status.get("VmRSS", 0.0)))
        time.sleep(2.0)
    if relay.returncode != 0:
        raise SystemExit("the relay failed")
    return samples, peak, time.perf_counter() - began


def _proc_status(pid: int) -> dict[str, float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024  # kB -> MB
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per drain round")
    parser.add_argument("--rounds", type=int, default=2, help="raw and relay rounds")
    parser.add_argument("--million", type=int, default=1_000_000,
                        help="events drained while memory is sampled (0 skips it)")
    args = parser.parse_args()
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    broker = Broker()
    try:
        print(f"PostgreSQL {connection.pg_version // 10000}, RabbitMQ at {_host()}, "
              f"{os.cpu_count()} CPUs; median of {args.rounds} rounds")
        # Latency first, on a quiet broker and database; the bulk runs churn both for a while.
        p50, p99, n = latency(broker)
        relay, raw = throughput(broker, args.events, args.rounds)
        print(f"relay drain:  {relay:8.0f} events/s  ({args.events} pending, confirms on)")
        print(f"raw pika:     {raw:8.0f} bodies/s  (AMQP transactions of {TX_BATCH})")
        print(f"ratio:        {relay / raw:8.2f}          (target >= 0.80)")
        print(f"latency:      p50 {p50:.1f} ms, p99 {p99:.1f} ms  "
              f"({n} events at {LATENCY_RATE}/s, NOTIFY; target 20 / 100 ms)")
        if args.million:
            samples, peak, seconds = memory(broker, args.million)
            series = ", ".join(f"{done // 1000}k:{rss:.0f}" for done, rss in samples[:: max(
                1, len(samples) // 8)])
            print(f"memory:       peak RSS {peak:.1f} MB draining {args.million} events "
                  f"in {seconds:.0f}s (target < 100 MB)")
            print(f"              RSS MB by events published: {series}")
    finally:
        broker.close()
        teardown_databases(state, verbosity=0)


def _host() -> str:
    from relay.urls import parse_broker_url

    address = parse_broker_url(BROKER_URL)
    return f"{address.host}:{address.port}"


if __name__ == "__main__":
    main()
