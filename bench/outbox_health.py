"""The outbox table under sustained load: dead rows, index sizes, autovacuum keeping up.

A writer saves authors through the master API (`Author.cqrs.bulk_create`, paced to a
target rate), `python -m relay` drains the outbox to a durable, uncapped queue that a
consumer reads as a replica would, and every interval the table's health is printed:
events written and published per second, what is pending, live and dead rows, the
sizes of the table and of its indexes (the partial pending index should stay as small
as the backlog), and the autovacuum runs so far. Retention is short, so the relay's
purge runs too and the table reaches a steady size.

Where the server runs with `autovacuum = off`, `--vacuum-every S` has the bench run
`VACUUM ANALYZE` on the outbox every S seconds instead, standing in for what the
table's autovacuum settings (migration 0006) ask of autovacuum.

    python bench/outbox_health.py [--rate 10000] [--minutes 10] [--retention 60]
                                  [--vacuum-every 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relay import (  # noqa: E402 - sets up Django first
    BROKER_URL,
    NAME,
    Broker,
    T,
    connection,
    pg,
    relay_process,
    setup_databases,
    teardown_databases,
)
from tests.testproject.master.models import Author  # noqa: E402

CHUNK = 500  # authors per bulk_create call of the writer
INTERVAL = 30.0  # seconds between health lines
CONSUMER = """
import sys, pika
c = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = c.channel()
ch.basic_qos(prefetch_count=5000)
ch.basic_consume(sys.argv[2], lambda *a: None, auto_ack=True)
ch.start_consuming()
"""

HEALTH_SQL = f"""
SELECT
  (SELECT count(*) FROM {T} WHERE status = 'pending'),
  s.n_live_tup, s.n_dead_tup, s.autovacuum_count, s.autoanalyze_count,
  pg_relation_size('{T}'),
  pg_relation_size('cqrs_outbox_pending_idx'),
  pg_relation_size('cqrs_outbox_published_idx'),
  pg_relation_size('{T}_pkey'),
  (SELECT coalesce(max(id), 0) FROM {T}),
  (SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'autovacuum:%%{T}%%')
FROM pg_stat_user_tables s WHERE s.relname = %s
"""


class Writer(threading.Thread):
    """Save authors through the master API at `rate` per second until stopped."""

    def __init__(self, rate: int) -> None:
        super().__init__(daemon=True)
        self.rate = rate
        self.written = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        began = time.perf_counter()
        while not self.stopping.is_set():
            ahead = began + self.written / self.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            Author.cqrs.bulk_create([Author(name=NAME.format(self.written + i))
                                     for i in range(CHUNK)])
            self.written += CHUNK
        connection.close()


class Vacuum(threading.Thread):
    """Run VACUUM ANALYZE on the outbox every `every` seconds; note how long each took."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.runs = 0
        self.last = 0.0  # seconds the last run took
        self.stopping = threading.Event()

    def run(self) -> None:
        with pg() as conn, conn.cursor() as cur:
            while not self.stopping.wait(self.every):
                began = time.perf_counter()
                cur.execute(f"VACUUM ANALYZE {T}")
                self.last = time.perf_counter() - began
                self.runs += 1


def health(cur) -> tuple:
    cur.execute(HEALTH_SQL, (T,))
    return cur.fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="events written per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--retention", type=float, default=60.0,
                        help="seconds the relay keeps published events")
    parser.add_argument("--vacuum-every", type=float, default=0.0,
                        help="seconds between VACUUM ANALYZE runs by the bench (0: none)")
    args = parser.parse_args()
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    broker = Broker(replicas=1)
    consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, BROKER_URL, broker.queues[0]])
    relay = relay_process(broker.exchange, "--retention", str(args.retention))
    writer = Writer(args.rate)
    vacuum = Vacuum(args.vacuum_every) if args.vacuum_every else None
    try:
        with pg() as conn, conn.cursor() as cur:
            cur.execute("SHOW autovacuum")
            autovacuum = cur.fetchone()[0]
        print(f"target {args.rate} events/s for {args.minutes} min, retention "
              f"{args.retention:.0f}s, server autovacuum {autovacuum}, bench VACUUM every "
              f"{args.vacuum_every or '-'}s, {os.cpu_count()} CPUs, load {_load()}")
        print(f"{'t s':>5} {'in/s':>6} {'out/s':>6} {'pending':>8} {'live':>9} {'dead':>9} "
              f"{'table MB':>8} {'pend idx':>8} {'pub idx':>7} {'pkey MB':>7} "
              f"{'autovac':>7} {'running':>7} {'vacuum':>9} {'queue':>7} {'load':>15}")
        writer.start()
        if vacuum is not None:
            vacuum.start()
        _watch(writer, vacuum, broker, args.minutes * 60)
    finally:
        writer.stopping.set()
        if vacuum is not None:
            vacuum.stopping.set()
            vacuum.join(600)
        writer.join(60)
        for process in (relay, consumer):
            process.terminate()
            process.wait(60)
        broker.close()
        teardown_databases(state, verbosity=0)


def _watch(writer: Writer, vacuum: Vacuum | None, broker: Broker, seconds: float) -> None:
    began = time.monotonic()
    with pg() as conn, conn.cursor() as cur:
        last_t, last_in, last_out = began, 0, 0
        while time.monotonic() - began < seconds:
            time.sleep(INTERVAL)
            (pending, live, dead, vacuums, analyses, table, pend_idx, pub_idx, pkey,
             max_id, running) = health(cur)
            now = time.monotonic()
            out_total = max_id - pending  # published or purged
            print(f"{now - began:>5.0f} {(writer.written - last_in) / (now - last_t):>6.0f} "
                  f"{(out_total - last_out) / (now - last_t):>6.0f} {pending:>8} {live:>9} "
                  f"{dead:>9} {table / 2**20:>8.0f} {pend_idx / 2**20:>8.1f} "
                  f"{pub_idx / 2**20:>7.1f} {pkey / 2**20:>7.1f} {vacuums + analyses:>7} "
                  f"{running:>7} {_vacuumed(vacuum):>9} {broker.depth():>7} {_load():>15}",
                  flush=True)
            last_t, last_in, last_out = now, writer.written, out_total


def _vacuumed(vacuum: Vacuum | None) -> str:
    return f"{vacuum.runs}/{vacuum.last:.1f}s" if vacuum is not None else "-"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
