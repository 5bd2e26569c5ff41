"""Relay drain rate on a fresh backlog, latency and memory, on PostgreSQL or MariaDB.

What a user sees after an outage: a backlog written through the master API
(`Author.cqrs.bulk_create`, 5,000 rows a call) into tables nobody analysed, then
`python -m relay --once` started right after. No manual ANALYZE; autovacuum runs as the
migrations configured it.

1. Commit-to-publish latency (measured first, on a quiet broker and database): a writer
   commits one event per transaction at 1,000 per second while the relay runs with
   LISTEN/NOTIFY; a consumer reading a durable queue, as a replica does, notes when
   each arrives.
2. Drain rate, per backlog size (100,000 and 1,000,000 by default, bodies of about 350
   bytes): the relay publishes to two durable, uncapped queues bound as two replicas
   of a mixed fleet bind theirs (`author` and `cqrs.<queue>.author`), with publisher
   confirms, marking each batch after its confirms. The rate runs from the first batch
   marked to the last; it is also given over the first, middle and last tenth of the
   drain, to show whether it stays flat.
3. Raw rate: the same bodies published with pika alone, in AMQP transactions of 500, to
   the same exchange, routing key and queues. The ratio of the two is the relay's cost.
   Then the broker's own ceiling: the same bodies on one pika connection with publisher
   confirms pipelined, `--window` (2,000) published and unconfirmed at any moment, timed
   as the relay is, from the first confirmation to the last. relay/ceiling says how
   much of what RabbitMQ can take the relay uses (the target is 0.9 on 1,000,000).
4. Memory: the relay's resident set, sampled while it drains the largest backlog.

The queues are purged between rounds and deleted at the end, with the databases. The
load average is printed before and after: the machine may be shared.

    python bench/relay.py [--sizes 100000,1000000] [--database postgres|mariadb]
                          [--window 2000] [--no-latency]

On MariaDB (`--database mariadb`) the relay polls, as it has no LISTEN, and there is no
autovacuum to count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import databases  # noqa: E402

os.environ["CQRS_TEST_DB"] = databases.asked(sys.argv[1:])
os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_bench_{uuid.uuid4().hex[:8]}")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"

import django  # noqa: E402

django.setup()

import pika  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from cqrs_outbox import store  # noqa: E402
from cqrs_outbox.core import contract, wire  # noqa: E402
from cqrs_outbox.store import dbapi  # noqa: E402
from tests.testproject.master.models import Author  # noqa: E402

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
TX_BATCH = 500  # messages per AMQP transaction in the raw baseline
WINDOW = 2000  # unconfirmed messages in flight in the broker's ceiling run (--window)
BULK = 5000  # rows per bulk_create call when writing the backlog
BODY_CHUNK = 20000  # bodies read per query for the raw baseline
REPLICAS = 2  # replica queues bound to the exchange, as in a mixed fleet
LATENCY_RATE = 1000  # events per second in the latency run
LATENCY_SECONDS = 12  # seconds of steady load measured (after a second of warm-up)
RSS_EVERY = 2.0  # seconds between samples of the relay's memory
T = contract.OUTBOX_TABLE
# An author's name of ordinary length, so each SAVE body is about 350 bytes.
NAME = "author number {:07d} with a name of ordinary length, as people tend to have"


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    scheme = "mysql" if connection.vendor == "mysql" else "postgresql"
    return f"{scheme}://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@contextlib.contextmanager
def opened() -> Iterator[dbapi.Database]:
    """Open the bench database as the relay does: autocommit, either server."""
    db = store.connect(database_url())
    try:
        yield db
    finally:
        db.close()


def scalar(sql: str, params: tuple = ()) -> object:
    with opened() as db:
        row = db.fetchone(sql, params)
        return row[0] if row else None


def backlog(count: int) -> tuple[int, int, float]:
    """Write `count` authors through the master API; return their events' id range and
    the write rate."""
    first = int(scalar(f"SELECT coalesce(max(id), 0) + 1 FROM {T}"))
    began = time.perf_counter()
    for start in range(0, count, BULK):
        Author.cqrs.bulk_create(
            [Author(name=NAME.format(i)) for i in range(start, min(count, start + BULK))]
        )
    rate = count / (time.perf_counter() - began)
    last = int(scalar(f"SELECT max(id) FROM {T}"))
    if last - first + 1 != count:
        raise SystemExit(f"expected {count} events, found {last - first + 1}")
    return first, last, rate


class Broker:
    """The bench's exchange and the replica queues bound to it."""

    def __init__(self, replicas: int = REPLICAS) -> None:
        self.exchange = f"cqrs_bench_{uuid.uuid4().hex[:8]}"
        self.queues = [f"{self.exchange}_replica{i}" for i in range(replicas)]
        with self.channel() as channel:
            channel.exchange_declare(self.exchange, "topic", durable=True)
            for queue in self.queues:  # declared and bound as a replica does
                channel.queue_declare(queue, durable=True)
                channel.queue_bind(queue, self.exchange, "author")
                channel.queue_bind(queue, self.exchange, f"cqrs.{queue}.author")

    @contextlib.contextmanager
    def channel(self) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
        """A channel on a connection of its own (long rounds outlive heartbeats)."""
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(BROKER_URL))) as c:
            yield c.channel()

    def depth(self) -> int:
        with self.channel() as channel:
            return sum(channel.queue_declare(q, passive=True).method.message_count
                       for q in self.queues)

    def purge(self) -> None:
        with self.channel() as channel:
            for queue in self.queues:
                channel.queue_purge(queue)

    def close(self) -> None:
        with self.channel() as channel:
            for queue in self.queues:
                channel.queue_delete(queue)
            channel.exchange_delete(self.exchange)


def relay_process(exchange: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "--database-url", database_url(),
         "--broker-url", BROKER_URL, "--exchange", exchange, "--log-level", "WARNING", *extra],
        cwd=ROOT,
    )


@dataclass(frozen=True)
class Drain:
    rate: float  # events per second, first batch marked to last
    tenths: tuple[float, float, float]  # first, middle and last tenth, events per second
    peak_rss: float  # MB
    autovacuums: int  # autovacuum and autoanalyze runs on the outbox meanwhile


def drain(exchange: str, first: int, last: int) -> Drain:
    """Drain the backlog with `python -m relay --once`; sample its memory meanwhile."""
    before = _maintenance()
    relay = relay_process(exchange, "--once")
    peak = 0.0
    while relay.poll() is None:
        peak = max(peak, _proc_status(relay.pid).get("VmHWM", 0.0))
        time.sleep(RSS_EVERY)
    if relay.returncode != 0:
        raise SystemExit("the relay failed")
    return Drain(*_rates(first, last), peak, _maintenance() - before)


def _rates(first: int, last: int) -> tuple[float, tuple[float, float, float]]:
    """Return the drain rate and the rates over the first, middle and last tenth, from
    when each event was marked published."""
    points = (0.0, 0.1, 0.45, 0.55, 0.9, 1.0)
    count = last - first + 1
    with opened() as db:
        (unpublished,) = db.fetchone(f"SELECT COUNT(*) FROM {T} WHERE id BETWEEN %s AND %s "
                                     "AND status <> 'published'", (first, last))
        if unpublished:
            raise SystemExit(f"{unpublished} events were not published")
        # The publishing times at those ranks (as percentile_disc picks them).
        stamps = [(db.fetchone(
            f"SELECT published_at FROM {T} WHERE id BETWEEN %s AND %s "
            "ORDER BY published_at LIMIT 1 OFFSET %s",
            (first, last, max(0, round(point * count) - 1)))[0]) for point in points]
        (first_batch,) = db.fetchone(f"SELECT COUNT(*) FROM {T} WHERE id BETWEEN %s AND %s "
                                     "AND published_at = %s", (first, last, stamps[0]))

    def rate(events: float, a: int, b: int) -> float:
        return events / max((stamps[b] - stamps[a]).total_seconds(), 1e-6)

    tenth = count / 10
    return rate(count - first_batch, 0, 5), (rate(tenth, 0, 1), rate(tenth, 2, 3),
                                              rate(tenth, 4, 5))


def _maintenance() -> int:
    if connection.vendor != "postgresql":
        return 0  # no autovacuum elsewhere
    return int(scalar(
        "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) "
        "FROM pg_stat_user_tables WHERE relname = %s", (T,)
    ))


@dataclass(frozen=True)
class Raw:
    rate: float  # bodies per second over the whole run
    tenths: tuple[float, float, float]  # first, middle and last tenth, bodies per second


def event_bodies(first: int, last: int) -> list[bytes]:
    """Return the bodies of events first..last, in id order, as the relay sends them."""
    bodies: list[bytes] = []
    with opened() as db:
        for start in range(first, last + 1, BODY_CHUNK):
            rows = db.fetchall(f"SELECT payload FROM {T} WHERE id BETWEEN %s AND %s "
                               "ORDER BY id", (start, min(last, start + BODY_CHUNK - 1)))
            bodies += [row[0].encode() for row in rows]
    return bodies


def _properties(i: int) -> pika.BasicProperties:
    return pika.BasicProperties(content_type=wire.CONTENT_TYPE,
                                delivery_mode=wire.DELIVERY_MODE_PERSISTENT, message_id=str(i))


def raw_rate(broker: Broker, bodies: list[bytes]) -> Raw:
    """Publish `bodies` with pika in transactions of 500."""
    marks = {round(len(bodies) * p) for p in (0.1, 0.45, 0.55, 0.9)}
    stamps = [time.perf_counter()]
    with broker.channel() as channel:
        channel.tx_select()
        for i, body in enumerate(bodies, 1):
            channel.basic_publish(broker.exchange, "author", body, _properties(i),
                                  mandatory=True)
            if i % TX_BATCH == 0:
                channel.tx_commit()
            if i in marks:
                stamps.append(time.perf_counter())
        channel.tx_commit()
    stamps.append(time.perf_counter())
    tenth = len(bodies) / 10
    return Raw(len(bodies) / (stamps[-1] - stamps[0]),
               (tenth / (stamps[1] - stamps[0]), tenth / (stamps[3] - stamps[2]),
                tenth / (stamps[5] - stamps[4])))


@dataclass(frozen=True)
class Ceiling:
    rate: float  # bodies per second, first ack to last, as the relay's rate is counted
    tenths: tuple[float, float, float]  # first, middle and last tenth, bodies per second
    in_flight: int  # the most messages published and not yet confirmed at once


class _Pipeline:
    """Publish bodies on one connection with up to `window` unconfirmed at a time.

    Why the asynchronous adapter: BlockingConnection's `confirm_delivery()` makes every
    `basic_publish` wait for that message's own ack before it returns, so no more than one
    message is ever unconfirmed and each pays a round trip and the broker's disk sync.
    A SelectConnection sends and reads on one I/O loop: `basic_publish` only appends the
    frames to the outgoing buffer, and the acks come back as callbacks while more are
    written. After every ack frame (RabbitMQ acks runs of tags with multiple=True) the
    window is topped up again, so `window` messages stay published and unconfirmed while
    the broker routes, persists and confirms the earlier ones: what the broker can take
    when the client never makes it wait. Returned (unroutable) or nacked messages fail
    the run, so the figure only counts messages both queues hold.
    """

    def __init__(self, exchange: str, bodies: list[bytes], window: int) -> None:
        self.exchange = exchange
        self.bodies = bodies
        self.window = window
        self.sent = 0  # messages published; their delivery tags are 1..sent
        self.floor = 0  # every tag up to here is confirmed
        self.above: set[int] = set()  # tags above the floor confirmed one by one
        self.in_flight = 0  # the most published and unconfirmed at once
        self.stamps: list[tuple[int, float]] = []  # (confirmed so far, when), per ack frame
        self.error: str | None = None
        self.channel: pika.channel.Channel | None = None
        self.connection = pika.SelectConnection(
            pika.URLParameters(BROKER_URL), on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error, on_close_callback=self._on_closed)

    def run(self) -> list[tuple[int, float]]:
        self.connection.ioloop.start()
        if self.error is not None:
            raise SystemExit(f"the ceiling run failed: {self.error}")
        return self.stamps

    @property
    def confirmed(self) -> int:
        return self.floor + len(self.above)

    def _on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=self._start)

    def _start(self, _frame: object) -> None:
        self.stamps.append((0, time.perf_counter()))
        self._top_up()

    def _top_up(self) -> None:
        assert self.channel is not None
        confirmed, total = self.confirmed, len(self.bodies)
        while self.sent < total and self.sent - confirmed < self.window:
            self.channel.basic_publish(self.exchange, "author", self.bodies[self.sent],
                                       _properties(self.sent + 1), mandatory=True)
            self.sent += 1
        self.in_flight = max(self.in_flight, self.sent - confirmed)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._fail(f"the broker nacked message {method.delivery_tag}")
            return
        if method.multiple:
            self.floor = max(self.floor, method.delivery_tag)
            if self.above:
                self.above = {tag for tag in self.above if tag > self.floor}
        else:
            self.above.add(method.delivery_tag)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)
        self.stamps.append((self.confirmed, time.perf_counter()))
        if self.confirmed == len(self.bodies):
            self.connection.close()
        else:
            self._top_up()

    def _on_return(self, _channel: object, method: object, properties: pika.BasicProperties,
                   _body: bytes) -> None:
        self._fail(f"message {properties.message_id} was returned: {method.reply_text}")

    def _fail(self, error: str) -> None:
        if self.error is None:
            self.error = error
        if not (self.connection.is_closing or self.connection.is_closed):
            self.connection.close()

    def _on_open_error(self, _connection: object, error: BaseException) -> None:
        self.error = f"cannot connect: {error!r}"
        self.connection.ioloop.stop()

    def _on_closed(self, _connection: object, reason: BaseException) -> None:
        if self.error is None and self.confirmed < len(self.bodies):
            self.error = f"the connection closed: {reason!r}"
        self.connection.ioloop.stop()


def ceiling_rate(broker: Broker, bodies: list[bytes], window: int) -> Ceiling:
    """Publish `bodies` with confirms pipelined `window` deep: the broker's own ceiling."""
    pipeline = _Pipeline(broker.exchange, bodies, window)
    stamps = pipeline.run()
    count = len(bodies)

    def when(rank: float) -> float:  # the first ack frame that confirmed this many
        wanted = round(count * rank)
        return next(t for done, t in stamps if done >= wanted)

    # As the relay's rate is counted: from the first confirmation to the last, over the
    # messages confirmed after the first (from the start when one ack confirmed them all).
    (first_done, first_at), (_, last_at) = stamps[1], stamps[-1]
    if first_done == count:
        first_done, first_at = stamps[0]
    tenth = count / 10
    return Ceiling(
        (count - first_done) / max(last_at - first_at, 1e-6),
        (tenth / max(when(0.1) - stamps[0][1], 1e-6),
         tenth / max(when(0.55) - when(0.45), 1e-6),
         tenth / max(last_at - when(0.9), 1e-6)),
        pipeline.in_flight,
    )


@dataclass(frozen=True)
class Round:
    events: int
    body_bytes: int
    write_rate: float
    drain: Drain
    raw: Raw
    ceiling: Ceiling


def one_round(broker: Broker, events: int, window: int) -> Round:
    first, last, write_rate = backlog(events)
    body = round(float(scalar(f"SELECT AVG(LENGTH(payload)) FROM {T} "  # type: ignore[arg-type]
                              "WHERE id BETWEEN %s AND %s", (first, last))))
    result = drain(broker.exchange, first, last)
    if broker.depth() != REPLICAS * events:
        raise SystemExit(f"expected {REPLICAS * events} messages queued, "
                         f"found {broker.depth()}")
    broker.purge()
    bodies = event_bodies(first, last)
    raw = raw_rate(broker, bodies)
    broker.purge()
    ceiling = ceiling_rate(broker, bodies, window)
    if broker.depth() != REPLICAS * events:
        raise SystemExit(f"ceiling run: expected {REPLICAS * events} messages queued, "
                         f"found {broker.depth()}")
    broker.purge()
    return Round(events, body, write_rate, result, raw, ceiling)


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
        with opened() as db:
            self._write(db, rate, seconds)

    def _write(self, db: dbapi.Database, rate: int, seconds: float) -> None:
        began = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            event = contract.NewEvent(
                cqrs_id="latency", instance_pk=str(i), signal_type="SAVE", revision=0,
                partition=contract.partition_for("latency", i), routing_key="latency",
                payload="{}")
            [event_id] = store.insert_events(db, [event])
            self.committed[event_id] = time.time()  # autocommit: committed now

    def stop(self) -> None:
        self._stop.set()
        self._consumer.join(10)
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(BROKER_URL))) as c:
            c.channel().queue_delete(self.queue)


def latency(broker: Broker) -> tuple[float, float, int]:
    # Only the probe's queue, durable and read at once as a replica's, gets these events:
    # the replica queues are bound to `author` only.
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
    samples = sorted(
        (probe.arrived[i] - t) * 1000
        for i, t in probe.committed.items()
        if i not in warm and i in probe.arrived
    )
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    return p50, p99, len(samples)


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
    parser.add_argument("--sizes", default="100000,1000000",
                        help="backlog sizes to drain, comma-separated")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency run")
    parser.add_argument("--window", type=int, default=WINDOW,
                        help="unconfirmed messages in flight in the broker's ceiling run "
                             "(default %(default)s)")
    parser.add_argument("--database", choices=databases.DATABASES,
                        default=os.environ["CQRS_TEST_DB"],
                        help="the master's database (default postgres)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.window < 1:
        parser.error("--window must be at least 1")
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    broker = Broker()
    try:
        print(f"{databases.server()}, RabbitMQ at {_host()}, "
              f"{os.cpu_count()} CPUs; load average {_load()} at the start")
        if not args.no_latency:
            # First, on a quiet broker and database: the bulk runs churn both for a while.
            p50, p99, n = latency(broker)
            wake = "NOTIFY" if connection.vendor == "postgresql" else "polling"
            print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms  "
                  f"({n} events at {LATENCY_RATE}/s, {wake}; target 20 / 100 ms)")
        print(f"{'backlog':>9} {'body B':>6} {'relay/s':>8} {'raw/s':>8} {'ratio':>6} "
              f"{'ceiling/s':>9} {'/ceiling':>8}   "
              f"{'relay first/middle/last':>23} {'last/first':>10}   "
              f"{'raw first/middle/last':>21} {'last/first':>10}   "
              f"{'ceiling first/middle/last':>25} {'last/first':>10} {'inflight':>8} "
              f"{'RSS MB':>6} {'autovac':>7} {'load':>14}")
        for size in sizes:
            r = one_round(broker, size, args.window)
            d, c = r.drain, r.ceiling
            print(f"{r.events:>9} {r.body_bytes:>6} {d.rate:>8.0f} {r.raw.rate:>8.0f} "
                  f"{d.rate / r.raw.rate:>6.2f} {c.rate:>9.0f} {d.rate / c.rate:>8.2f}   "
                  f"{_tenths(d.tenths):>23} {d.tenths[2] / d.tenths[0]:>10.2f}   "
                  f"{_tenths(r.raw.tenths):>21} {r.raw.tenths[2] / r.raw.tenths[0]:>10.2f}   "
                  f"{_tenths(c.tenths):>25} {c.tenths[2] / c.tenths[0]:>10.2f} "
                  f"{c.in_flight:>8} {d.peak_rss:>6.1f} {d.autovacuums:>7} {_load():>14}",
                  flush=True)
        print(f"targets: ratio >= 1.0 and relay/ceiling >= 0.9 on the largest backlog, "
              f"last/first >= 0.8; raw: AMQP transactions of {TX_BATCH}; ceiling: one "
              f"connection, publisher confirms pipelined {args.window} deep; {REPLICAS} "
              f"durable queues, uncapped; backlog written with bulk_create of {BULK}, never "
              f"analysed by hand")
    finally:
        broker.close()
        teardown_databases(state, verbosity=0)


def _tenths(rates: tuple[float, float, float]) -> str:
    return " / ".join(f"{rate:.0f}" for rate in rates)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _host() -> str:
    from cqrs_outbox.core.urls import parse_broker_url

    address = parse_broker_url(BROKER_URL)
    return f"{address.host}:{address.port}"


if __name__ == "__main__":
    main()
