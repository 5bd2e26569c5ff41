"""Events applied per second: our `cqrs_consume` against django-cqrs's, on PostgreSQL.

The same events (rows x revisions SAVEs, as a master sends them) are queued once for
each consumer, each consumer runs with its own database (ours with `--workers` worker
processes, django-cqrs's with one),
and the clock runs from the first message taken off its queue until its database holds
every row at its last revision. Then 200,000 events are queued for our worker alone,
and its peak resident memory is read while it drains them: the prefetch window bounds
it, not the queue.

Beside each of our two rates, the raw consume ceiling: the same events, queued alike on
a durable queue of their own, drained by pika alone with a prefetch window of 1,000 and
an ack with multiple=True every `--ack-every` (100) messages, doing no work. Our rate
over it is the share of what a Python consumer could take off RabbitMQ that ours
reaches (targets: 0.4 with `--workers 2`, 0.25 with one worker). One drain of 20,000
events lasts half a second and its rate swings by half from one to the next, so the
ceiling is drained `--ceiling-runs` (3) times, the same events queued again between
runs, and the median taken.

    python bench/replica.py [--rows 4000] [--revisions 5] [--big 200000] [--signatures]
                            [--workers 1] [--ack-every 100] [--ceiling-runs 3]

`--signatures` first prints what checking a signature costs per event, next to what
the worker spends parsing and validating the same body anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cqrs_outbox.conf import DEFAULT_PREFETCH_COUNT  # noqa: E402

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
    "password": os.environ.get("PGPASSWORD", ""),
}
OURS = "tests.testproject.settings"
THEIRS = "tests.peers.replica_settings"
POLL = 0.02  # seconds between progress checks
TIMEOUT = 900  # seconds a consumer may take before the run is abandoned
RUN = uuid.uuid4().hex[:8]
EXTRA = os.environ.get("BENCH_EXTRA", "").split()


def body(pk: int, revision: int) -> bytes:
    """Return the body a master sends for row `pk` saved at `revision`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({
        "signal_type": "SAVE", "cqrs_id": "author",
        "instance_data": {"id": pk, "name": f"author {pk} r{revision}",
                          "cqrs_revision": revision, "cqrs_updated": str(now)},
        "previous_data": None, "instance_pk": pk, "correlation_id": None, "retries": 0,
        "expires": (now + datetime.timedelta(days=1)).replace(microsecond=0).isoformat(),
        "meta": None,
    }).encode()


def sql(database: str, statement: str, autocommit: bool = False) -> list:
    conn = psycopg2.connect(dbname=database, **PG)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def django(settings: str, env: dict, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "django", args[0], f"--settings={settings}",
                             *args[1:]], cwd=ROOT, env={**os.environ, **env}, **popen)


@contextlib.contextmanager
def database(settings: str, env_key: str, *migrate_args: str) -> Iterator[str]:
    """Create a database, build the project's tables in it, drop it afterwards."""
    name = f"cqrs_bench_{RUN}_{len(migrate_args)}"
    sql("postgres", f'CREATE DATABASE "{name}"', autocommit=True)
    try:
        done = django(settings, {env_key: name}, "migrate", "-v", "0", *migrate_args)
        assert done.wait() == 0, f"migrate failed for {settings}"
        yield name
    finally:
        sql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)


class Broker:
    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        self.channel = self.connection.channel()
        self.exchange = f"cqrs_bench_{RUN}"
        self.channel.exchange_declare(self.exchange, "topic", durable=True)
        self.queues: list[str] = []

    def queue(self, name: str) -> str:
        """Declare a queue as both consumers do (durable, no arguments), bound to 'author'."""
        self.channel.queue_declare(name, durable=True)
        self.channel.queue_bind(name, self.exchange, "author")
        self.queues += [name, f"dead_letter_{name}", f"{name}.delay"]
        return name

    def fill(self, rows: int, revisions: int, expect: dict[str, int]) -> None:
        """Publish rows x revisions events (revision by revision) to every bound queue."""
        props = pika.BasicProperties(content_type="text/plain", delivery_mode=2)
        for revision in range(revisions):
            for pk in range(1, rows + 1):
                self.channel.basic_publish(self.exchange, "author", body(pk, revision), props)
        for name, count in expect.items():
            while self.count(name) < count:
                self.connection.sleep(0.2)

    def refill(self, name: str, rows: int, revisions: int) -> None:
        """Queue the same events again on `name` alone (bound only while publishing)."""
        self.channel.queue_bind(name, self.exchange, "author")
        try:
            self.fill(rows, revisions, {name: rows * revisions})
        finally:
            self.unbind(name)

    def count(self, name: str) -> int:
        return self.channel.queue_declare(name, passive=True).method.message_count

    def unbind(self, name: str) -> None:
        self.channel.queue_unbind(name, self.exchange, "author")

    def close(self) -> None:
        for name in self.queues:
            self.channel.queue_delete(name)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


def rss(pid: int) -> tuple[int, int]:
    """Return (current, peak) resident memory of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("VmHWM", "0 kB").split()[0])


def drain(broker: Broker, queue: str, total: int, done: callable, proc: subprocess.Popen
          ) -> tuple[float, int]:
    """Time a consumer from its first taken message until `done()`; return (s, peak KiB)."""
    deadline = time.monotonic() + TIMEOUT
    peak, tree = 0, Tree(proc.pid)
    while broker.count(queue) >= total:
        assert proc.poll() is None and time.monotonic() < deadline, "consumer did not start"
        time.sleep(POLL)
    start = time.perf_counter()
    while not done():
        assert proc.poll() is None and time.monotonic() < deadline, "consumer did not finish"
        peak = max(peak, tree.peak())
        # pika's own sleep answers the broker's heartbeats: a drain of minutes (django-cqrs
        # with CONN_MAX_AGE=0) would otherwise see the bench's connection dropped.
        broker.connection.sleep(POLL)
    elapsed = time.perf_counter() - start
    peak = max(peak, tree.peak())
    return elapsed, peak


class Tree:
    """A process and its descendants (with `-w 2` the workers are children of the
    command's process): the largest peak resident memory among them, in KiB. The
    descendants are looked up at most once a second, to keep /proc scans off the clock."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids = [pid]
        self.scanned = 0.0

    def peak(self) -> int:
        if time.monotonic() - self.scanned > 1.0:
            self.pids, self.scanned = self._descendants(), time.monotonic()
        peak = 0
        for pid in self.pids:
            with contextlib.suppress(OSError):  # gone meanwhile
                peak = max(peak, rss(pid)[1])
        return peak

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                ppid = int(stat.read_text().rpartition(")")[2].split()[1])
                children.setdefault(ppid, []).append(int(stat.parent.name))
        found, todo = [], [self.pid]
        while todo:
            found.append(todo.pop())
            todo += children.get(found[-1], [])
        return found


RAW_PREFETCH = 1000  # the raw consume ceiling's prefetch window


def raw_consume(queue: str, total: int, ack_every: int) -> float:
    """Drain `total` messages from `queue` with pika alone, doing no work with them: a
    prefetch window of RAW_PREFETCH, one ack with multiple=True every `ack_every`
    messages. Return the seconds from the first delivery to the last ack.

    The asynchronous adapter, as the relay's publisher uses: deliveries are handed to the
    callback as the I/O loop reads them, with none of the blocking adapter's buffering
    and dispatch in between; what is left is pika's frame decoding, the broker's
    delivery and the ack traffic, the least any consumer in Python pays per message.
    """
    state = {"seen": 0, "first": 0.0, "last": 0.0, "error": ""}

    def on_open(conn: pika.SelectConnection) -> None:
        conn.channel(on_open_callback=on_channel)

    def on_channel(channel: pika.channel.Channel) -> None:
        channel.basic_qos(prefetch_count=RAW_PREFETCH,
                          callback=lambda _frame: channel.basic_consume(queue, on_message))

    def on_message(channel: pika.channel.Channel, method: pika.spec.Basic.Deliver,
                   _properties: pika.BasicProperties, _body: bytes) -> None:
        state["seen"] += 1
        if state["seen"] == 1:
            state["first"] = time.perf_counter()
        if state["seen"] % ack_every == 0 or state["seen"] == total:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if state["seen"] == total:
            state["last"] = time.perf_counter()
            connection.close()

    def on_open_error(_conn: object, error: BaseException) -> None:
        state["error"] = f"cannot connect: {error!r}"
        connection.ioloop.stop()

    def on_closed(_conn: object, reason: BaseException) -> None:
        if state["seen"] < total and not state["error"]:
            state["error"] = f"the connection closed after {state['seen']}: {reason!r}"
        connection.ioloop.stop()

    def too_long() -> None:
        state["error"] = f"only {state['seen']} of {total} messages in {TIMEOUT} s"
        connection.close()

    connection = pika.SelectConnection(pika.URLParameters(BROKER_URL), on_open_callback=on_open,
                                       on_open_error_callback=on_open_error,
                                       on_close_callback=on_closed)
    connection.ioloop.call_later(TIMEOUT, too_long)
    connection.ioloop.start()
    assert not state["error"], f"raw consume ceiling: {state['error']}"
    return state["last"] - state["first"]


def ceiling_line(broker: Broker, queue: str, rows: int, revisions: int, ours_s: float,
                 args: argparse.Namespace) -> str:
    """Drain `queue` with the raw consumer `args.ceiling_runs` times (queueing the same
    events again between runs); return its line: the median run, the range, and our
    rate's ratio to the median."""
    total = rows * revisions
    runs = []
    for run in range(args.ceiling_runs):
        if run:
            broker.refill(queue, rows, revisions)
        runs.append(raw_consume(queue, total, args.ack_every))
        assert broker.count(queue) == 0, "the raw consumer left messages on its queue"
    seconds = statistics.median(runs)
    spread = (f", runs {total / max(runs):.0f} to {total / min(runs):.0f}"
              if len(runs) > 1 else "")
    target = {1: 0.25, 2: 0.4}.get(args.workers)
    ratio = seconds / ours_s  # (total / ours_s) / (total / seconds)
    return (f"raw pika consume ceiling: {total / seconds:8.0f} events/s ({seconds:6.2f} s, "
            f"median of {len(runs)}{spread}; prefetch {RAW_PREFETCH}, ack every "
            f"{args.ack_every} with multiple, no work); cqrs-outbox/ceiling {ratio:.2f}"
            + (f" (target {target} with -w {args.workers}: "
               f"{'met' if ratio >= target else 'NOT met'})" if target else "")
            + f" ({_load()})")


def _load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def at_last_revision(database: str, table: str, rows: int, revision: int) -> callable:
    query = f"SELECT count(*) FROM {table} WHERE cqrs_revision = {revision}"
    return lambda: sql(database, query)[0][0] == rows


def run_ours(broker: Broker, queue: str, db: str, rows: int, revisions: int,
             extra: tuple = ()) -> tuple[float, int]:
    env = {"CQRS_TEST_DB_NAME": db, "CQRS_TEST_EXCHANGE": broker.exchange,
           "CQRS_TEST_QUEUE": queue}
    proc = django(OURS, env, "cqrs_consume", "--cqrs-id", "author", *EXTRA, *extra)
    try:
        done = at_last_revision(db, "replica_authorref", rows, revisions - 1)
        return drain(broker, queue, rows * revisions, done, proc)
    finally:
        stop(proc)
        broker.unbind(queue)  # the consumer bound it: no later fill may land there


def run_theirs(broker: Broker, queue: str, db: str, rows: int, revisions: int,
               persistent: bool) -> tuple[float, int]:
    env = {"CQRS_PEER_DB_NAME": db, "CQRS_TEST_EXCHANGE": broker.exchange,
           "CQRS_TEST_QUEUE": queue, "CQRS_PEER_PERSISTENT_DB": "1" if persistent else ""}
    proc = django(THEIRS, env, "cqrs_consume", "--cqrs-id", "author")
    try:
        done = at_last_revision(db, "peer_replica_authorref", rows, revisions - 1)
        # django-cqrs's worker is a child of the command process; its peak is not read.
        return drain(broker, queue, rows * revisions, done, proc)[0], 0
    finally:
        stop(proc)
        broker.unbind(queue)  # as in run_ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--revisions", type=int, default=5)
    parser.add_argument("--big", type=int, default=200000, help="events queued for the RSS run")
    parser.add_argument("--skip-theirs", action="store_true")
    parser.add_argument("--workers", "-w", type=int, default=1,
                        help="worker processes of our cqrs_consume (its -w; default 1)")
    parser.add_argument("--ack-every", type=int, default=100,
                        help="messages per multiple ack of the raw consume ceiling "
                             "(default %(default)s)")
    parser.add_argument("--ceiling-runs", type=int, default=3,
                        help="drains of the raw consume ceiling, the median taken "
                             "(default %(default)s): one run swings by half")
    parser.add_argument("--signatures", action="store_true",
                        help="print the signature check's cost per event first")
    args = parser.parse_args()
    if args.big < max(1, args.revisions):
        parser.error("--big must be at least --revisions: the RSS run queues --big // "
                     "--revisions rows and waits for their events")
    if args.workers < 1 or args.ack_every < 1 or args.ceiling_runs < 1:
        parser.error("--workers, --ack-every and --ceiling-runs must be at least 1")
    if args.signatures:
        verification_cost()
    broker = Broker()
    try:
        with database(OURS, "CQRS_TEST_DB_NAME") as ours, \
                database(THEIRS, "CQRS_PEER_DB_NAME", "--run-syncdb") as theirs:
            compare(broker, ours, theirs, args)
            memory(broker, ours, args)
    finally:
        broker.close()


VERIFY_SAMPLES = 5000  # events per figure of the verification cost


def _per_event_us(check: callable, samples: int = VERIFY_SAMPLES) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(samples):
            check()
        runs.append((time.perf_counter() - start) / samples * 1e6)
    return sorted(runs)[2]


def verification_cost() -> None:
    """Print microseconds per event of verifying a signature and of decoding the body."""
    from cqrs_outbox.core import signing, wire

    pem, public = signing.generate()
    signer = signing.load_signer("bench", pem, "bench")
    verifier = signing.Verifier({"author": {"bench": signing.load_public(public, "bench")}})
    raw = body(1, 3)
    header = signer.header(raw)
    assert verifier.refusal("author", raw, header) is None
    verify = _per_event_us(lambda: verifier.refusal("author", raw, header))
    decode = _per_event_us(lambda: wire.decode(raw))
    print(f"signature check: {verify:.1f} us/event (Ed25519, {len(raw)}-byte body); "
          f"decoding and validating the same body: {decode:.1f} us/event; "
          f"check/decode {verify / decode:.1f}")


def compare(broker: Broker, ours: str, theirs: str, args: argparse.Namespace) -> None:
    """Print events/s of both consumers on the same events, and the ratio."""
    total = args.rows * args.revisions
    variants = [] if args.skip_theirs else [False, True]
    raw = f"bench_raw_{RUN}"
    queues = {q: total for q in [broker.queue(f"bench_ours_{RUN}")]
              + [broker.queue(f"bench_dj{int(p)}_{RUN}") for p in variants]
              + [broker.queue(raw)]}
    broker.fill(args.rows, args.revisions, queues)
    names = list(queues)
    for name in names:
        broker.unbind(name)
    our_s, our_peak = run_ours(broker, names[0], ours, args.rows, args.revisions,
                               ("-w", str(args.workers)))
    print(f"{total} events ({args.rows} rows x {args.revisions} revisions, SAVE), "
          f"{_workers(args.workers)} for cqrs-outbox"
          f"{'' if args.skip_theirs else ', one for django-cqrs'}, PostgreSQL "
          f"{sql(ours, 'SHOW server_version')[0][0].split()[0]}")
    print(f"cqrs-outbox  cqrs_consume: {total / our_s:8.0f} events/s ({our_s:6.2f} s, "
          f"peak RSS {our_peak / 1024:.1f} MiB; {_load()})")
    print(ceiling_line(broker, raw, args.rows, args.revisions, our_s, args))
    for persistent, name in zip(variants, names[1:-1], strict=True):
        sql(theirs, "TRUNCATE peer_replica_authorref", autocommit=True)
        their_s, _ = run_theirs(broker, name, theirs, args.rows, args.revisions, persistent)
        label = "persistent connections" if persistent else "CONN_MAX_AGE=0, Django's default"
        print(f"django-cqrs  cqrs_consume: {total / their_s:8.0f} events/s ({their_s:6.2f} s, "
              f"{label}); ratio {their_s / our_s:.1f}x")


def memory(broker: Broker, ours: str, args: argparse.Namespace) -> None:
    """Print our worker's peak resident memory while it drains `args.big` queued events."""
    rows = args.big // args.revisions
    total = rows * args.revisions
    queue, raw = broker.queue(f"bench_big_{RUN}"), broker.queue(f"bench_bigraw_{RUN}")
    broker.fill(rows, args.revisions, {queue: total, raw: total})
    broker.unbind(queue)
    broker.unbind(raw)
    sql(ours, "TRUNCATE replica_authorref", autocommit=True)
    seconds, peak = run_ours(broker, queue, ours, rows, args.revisions,
                             ("-w", str(args.workers)))
    print(f"cqrs-outbox  with {total} queued: {total / seconds:8.0f} events/s, "
          f"worker peak RSS {peak / 1024:.1f} MiB (prefetch window {DEFAULT_PREFETCH_COUNT}"
          f"{' unless BENCH_EXTRA sets one' if EXTRA else ''}), "
          f"{_workers(args.workers)} ({_load()})")
    print(ceiling_line(broker, raw, rows, args.revisions, seconds, args))


def _workers(count: int) -> str:
    return "one worker" if count == 1 else f"{count} workers"


if __name__ == "__main__":
    main()
