"""Master writes per second: plain Django, cqrs-outbox and django-cqrs, on PostgreSQL or MariaDB.

Three columns in one run, on models with the same columns: a plain Django model, our
MasterMixin (the event goes into the outbox in the same transaction) and django-cqrs's
MasterMixin publishing to the local RabbitMQ (exchange bound to a durable queue), run
in a child process of its own. Rounds alternate between the columns so that noise from
a shared machine falls on all alike; each figure is the median of the rounds.

Every scenario runs twice: straight to PostgreSQL on loopback, and through a loopback
proxy that holds each packet `--delay-ms / 2` each way, as a database on another host
would (the broker is reached directly in both). The round trip the proxy adds is
measured and printed.

Scenarios: "atomic", one create per `transaction.atomic()`; "autocommit", a bare
`create()`; "tx10", ten creates per transaction; "tx10-update", ten saves of loaded
rows per transaction; "bulk", `bulk_create` of 100 (`cqrs.bulk_create` on masters).

The driver is the one Django finds: psycopg 3 when installed, else psycopg2.

    python bench/master_write.py [--rows 100] [--rounds 9] [--delay-ms 0.5] [--signing]
                                 [--database postgres|mariadb] [--writers 8]

`--database mariadb` runs all three columns on MariaDB (127.0.0.1:3306, root; the test
settings' MYSQL_HOST and MYSQL_TCP_PORT), through mysqlclient, at REPEATABLE READ.

`--floor` adds a column "floor" to "autocommit", "tx10", "bulk" and "concurrent": plain
Django's writes plus, in the same transaction, the rows our events would add, built
before the clock starts (`scenarios.floor`). It is what the outbox would cost with no
Python of its own (no signal, no tracking, no event building): the database's part, the
floor of outbox/plain.

`--signing` adds a column "signed" (our master with an Ed25519 signing key) and prints
the signing cost per event: the builder's time per event with signing off and on, and
one signature alone.

`--capture` adds a column "net": our master with CQRS['master']['capture'] = 'database'
and its triggers installed for the round (dropped after it, so the other columns run
without them). Then two figures of the capture itself: `filter().update()` of 10,000
rows, plain Django against ours without and with the triggers (microseconds per row over
plain, serialisation at commit included); and a raw-SQL UPDATE of 10,000 rows with
`cqrs_relay` and `cqrs_consume` running as processes, timed from its commit until the
replica table holds every new value.

"concurrent", run by default after the others: `--writers` (8) processes per column, each
making bare `create()`s in autocommit at once, as a busy site's workers do; group
commit and lock waits only show with several writers. Plain Django, ours and
django-cqrs alternate by round as above, on loopback only (the delaying proxy is one
process and would be the bottleneck of eight writers); the figure is all the
processes' creates per second, with outbox/django-cqrs and outbox/plain.

Short rounds, many of them: on a shared machine the load changes by the second, and
fine alternation lets every column meet the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,  # noqa: E402
    setup_databases,
    teardown_databases,
)

from bench import scenarios  # noqa: E402
from cqrs_outbox.core import signing  # noqa: E402
from cqrs_outbox.master import events, triggers  # noqa: E402
from tests.testproject.master import models  # noqa: E402

COLUMNS: tuple[str, ...] = ("plain", "outbox", "django-cqrs")
SIGNED = "signed"
FLOOR = "floor"
FLOOR_SCENARIOS = scenarios.FLOOR_SCENARIOS
NET = "net"
UPDATE_ROWS = 10_000  # rows of the update() and raw-SQL figures
SIGN_SAMPLES = 2000  # events built per figure of the signing cost
TARGETS = {  # scenario: (column, baseline, minimum ratio) from the project's goals
    "atomic": ("outbox", "django-cqrs", 1.0),
    "autocommit": ("outbox", "django-cqrs", 1.0),
    "tx10": ("outbox", "plain", 0.8),
    "tx10-update": ("outbox", "plain", 0.8),
    "bulk": ("outbox", "plain", 0.6),
}


class Peer:
    """django-cqrs's master in a child process, driven one scenario at a time."""

    def __init__(self, db_name: str, exchange: str) -> None:
        env = dict(os.environ, BENCH_DB_NAME=db_name, BENCH_EXCHANGE=exchange,
                   BENCH_DB_KIND=os.environ["CQRS_TEST_DB"],
                   BENCH_BROKER_URL=settings.CQRS["url"], PYTHONPATH=str(ROOT))
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "djcqrs_master.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the django-cqrs column did not start")

    def run(self, scenario: str, rows: int, port: str) -> float:
        self.proc.stdin.write(f"{scenario} {rows} {port}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


class Crowd:
    """Writer processes of one or more columns, each column's given a command at once.

    With several writers the database shows what one writer never meets: commits that
    share a WAL flush (group commit) and waits on the same locks, sequences and pages.
    Each column's processes are started once and stay connected, so a round times the
    writes alone: the clock runs from handing every process its command until the last
    has answered, and the rate is all of their rows over that time.
    """

    def __init__(self, db_name: str, exchange: str, count: int) -> None:
        env = dict(os.environ, CQRS_TEST_DB_NAME=db_name, PYTHONPATH=str(ROOT))
        self.ours = [subprocess.Popen([sys.executable, str(ROOT / "bench" / "writer.py")],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=env, cwd=ROOT) for _ in range(count)]
        self.peers: list[Peer] = []
        try:
            for proc in self.ours:
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError("a writer process did not start")
            self.peers = [Peer(db_name, exchange) for _ in range(count)]
        except BaseException:
            self.stop()
            raise

    def run(self, column: str, scenario: str, rows: int, port: str) -> float:
        """Have every process of `column` write `rows` rows; return rows/s over them all."""
        if column == "django-cqrs":
            procs, line = [peer.proc for peer in self.peers], f"{scenario} {rows} {port}\n"
        else:
            procs, line = self.ours, f"{column} {scenario} {rows}\n"
        start = time.perf_counter()
        for proc in procs:
            proc.stdin.write(line)
            proc.stdin.flush()
        for proc in procs:
            float(proc.stdout.readline())  # its own rate; it also says it is done
        return len(procs) * rows / (time.perf_counter() - start)

    def stop(self) -> None:
        for proc in self.ours:
            proc.stdin.close()
        for proc in self.ours:
            proc.wait(30)
        for peer in self.peers:
            peer.stop()


CONCURRENT = "concurrent"  # the scenario name of the several-writers case
CONCURRENT_SCENARIO = "autocommit"  # what each of its writers does


def _concurrent(crowd: Crowd, writers: int, rows: int, rounds: int, port: str) -> None:
    """Print creates/s of `writers` processes per column, and the ratios."""
    columns = ("plain", "outbox", "django-cqrs", *((FLOOR,) if FLOOR in COLUMNS else ()))
    _use_port(port)
    before = (models.Plain.objects.count(), models.Author.objects.count())
    for column in columns:  # warm up: first connections, first pages of each table
        crowd.run(column, CONCURRENT_SCENARIO, min(rows, 20), port)
    found: dict = {c: [] for c in columns}
    for _ in range(rounds):
        for column in columns:
            found[column].append(crowd.run(column, CONCURRENT_SCENARIO, rows, port))
    # The writers wrote where this process reads: every row of every round is there.
    wanted = writers * (min(rows, 20) + rows * rounds)
    written = (models.Plain.objects.count() - before[0],
               models.Author.objects.count() - before[1])
    if written != (wanted * (2 if FLOOR in columns else 1), wanted):
        raise RuntimeError(f"expected {wanted} rows from the writers, found {written}")
    rates = {c: statistics.median(v) for c, v in found.items()}
    print(f"{CONCURRENT:11} {'loopback':8} plain {rates['plain']:7.0f}  outbox "
          f"{rates['outbox']:7.0f}  django-cqrs {rates['django-cqrs']:7.0f} creates/s   "
          f"outbox/django-cqrs {rates['outbox'] / rates['django-cqrs']:.2f}   outbox/plain "
          f"{rates['outbox'] / rates['plain']:.2f}"
          + (f"   floor {rates[FLOOR]:7.0f} creates/s, floor/django-cqrs "
             f"{rates[FLOOR] / rates['django-cqrs']:.2f}, floor/plain "
             f"{rates[FLOOR] / rates['plain']:.2f}, outbox/floor "
             f"{rates['outbox'] / rates[FLOOR]:.2f}" if FLOOR in rates else "")
          + f"   ({writers} writer processes, bare "
          f"create() in autocommit, {rows} rows each a round; {_load()})")


class Proxy:
    """The delaying loopback proxy, in a process of its own so it takes no GIL from us."""

    def __init__(self, host: str, port: str, delay_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcpproxy", host, port,
             "--delay-ms", str(delay_ms / 2)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        self.port = self.proc.stdout.readline().strip()

    def sends(self) -> int:
        """Return how many chunks clients sent through the proxy so far."""
        self.proc.stdin.write("sends\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def _calibrated_proxy(host: str, port: str, wanted_ms: float) -> Proxy:
    # The proxy's own forwarding costs some of the wanted delay already; sleep the rest.
    bare = Proxy(host, port, 0.0)
    try:
        overhead = _round_trip_ms(bare.port) - _round_trip_ms(port)
    finally:
        bare.stop()
    return Proxy(host, port, max(0.0, wanted_ms - overhead))


def _use_port(port: str) -> None:
    connection.close()
    connection.settings_dict["PORT"] = port


def _round_trip_ms(port: str, samples: int = 200) -> float:
    _use_port(port)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        start = time.perf_counter()
        for _ in range(samples):
            cursor.execute("SELECT 1")
    return (time.perf_counter() - start) / samples * 1000


def _ours(scenario: str, column: str, rows: int, port: str) -> float:
    _use_port(port)
    if column == FLOOR:
        return scenarios.floor(scenario, rows)
    if column == "plain":
        return scenarios.run(scenario, models.Plain, models.Plain.objects, rows)
    if column == SIGNED:
        with override_settings(CQRS=_signed_settings()):
            return scenarios.run(scenario, models.Author, models.Author.cqrs, rows)
    if column == NET:
        with override_settings(CQRS=_capture_settings()), _triggers():
            return scenarios.run(scenario, models.Author, models.Author.cqrs, rows)
    return scenarios.run(scenario, models.Author, models.Author.cqrs, rows)


_KEY_FILE: list[str] = []


def _capture_settings() -> dict:
    return {**settings.CQRS, "master": {**settings.CQRS["master"], "capture": "database"}}


@contextlib.contextmanager
def _triggers():
    triggers.install([models.Author])
    try:
        yield
    finally:
        triggers.install([models.Author], remove=True)


def _update_figures(rounds: int) -> None:
    """filter().update() of UPDATE_ROWS rows: plain, ours ('orm'), ours with the net."""
    models.Plain.objects.bulk_create(models.Plain(name=f"u{i}") for i in range(UPDATE_ROWS))
    with override_settings(CQRS={**settings.CQRS, "master": {
            **settings.CQRS["master"], "capture": "off"}}):
        models.Author.objects.bulk_create(models.Author(name=f"u{i}")
                                          for i in range(UPDATE_ROWS))
    first_plain = models.Plain.objects.order_by("-pk")[UPDATE_ROWS - 1].pk
    first_author = models.Author.objects.order_by("-pk")[UPDATE_ROWS - 1].pk

    def timed(column: str, n: int) -> float:
        start = time.perf_counter()
        if column == "plain":
            done = models.Plain.objects.filter(pk__gte=first_plain).update(name=f"v{n}")
        else:
            done = models.Author.objects.filter(pk__gte=first_author).update(name=f"v{n}")
        assert done == UPDATE_ROWS, done
        return time.perf_counter() - start

    found: dict = {"plain": [], "outbox": [], NET: []}
    for n in range(rounds):
        found["plain"].append(timed("plain", n))
        found["outbox"].append(timed("outbox", n))
        with override_settings(CQRS=_capture_settings()), _triggers():
            found[NET].append(timed(NET, n))
    secs = {c: statistics.median(v) for c, v in found.items()}
    over = {c: (secs[c] - secs["plain"]) / UPDATE_ROWS * 1e6 for c in ("outbox", NET)}
    print(f"update() of {UPDATE_ROWS:,} rows ({_load()}): plain {secs['plain']:.3f} s, "
          f"outbox {secs['outbox']:.3f} s (+{over['outbox']:.0f} us/row), net "
          f"{secs[NET]:.3f} s (+{over[NET]:.0f} us/row; target at most +100 us/row: "
          f"{'met' if max(over.values()) <= 100 else 'NOT met'})")


def _raw_to_replica() -> None:
    """A raw UPDATE of UPDATE_ROWS rows, timed from its commit to the replica."""
    from tests.acceptance.replica import support
    from tests.testproject.replica.models import AuthorRef

    env = {"CQRS_TEST_DB_NAME": connection.settings_dict["NAME"],
           "CQRS_TEST_CAPTURE": "database"}
    workdir = Path(tempfile.mkdtemp(prefix="cqrs-bench-"))
    settings_module = "tests.testproject.settings"
    with override_settings(CQRS=_capture_settings()):
        triggers.install([models.Author])
        consumer = support.django(["cqrs_consume", "-w", "1"], settings_module, env,
                                  workdir / "consumer.log")
        relay = support.django(["cqrs_relay"], settings_module, env, workdir / "relay.log")
        try:
            with override_settings(CQRS={**settings.CQRS, "master": {
                    **settings.CQRS["master"], "capture": "off"}}):
                models.Author.objects.all().delete()
            ids = [a.pk for a in models.Author.objects.bulk_create(
                models.Author(name=f"r{i}") for i in range(UPDATE_ROWS))]
            _wait(lambda: AuthorRef.objects.filter(pk__in=ids).count() == UPDATE_ROWS, 300,
                  "the replica holding the rows")
            table = connection.ops.quote_name(models.Author._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET name = 'raw' WHERE id >= %s", [min(ids)])
            committed = time.perf_counter()
            _wait(lambda: AuthorRef.objects.filter(pk__in=ids, name="raw").count()
                  == UPDATE_ROWS, 120, "the raw update on the replica")
            took = time.perf_counter() - committed
        finally:
            relay.terminate()
            consumer.terminate()
            _delete_replica_objects()
            shutil.rmtree(workdir, ignore_errors=True)
            triggers.install([models.Author], remove=True)
    print(f"raw-SQL UPDATE of {UPDATE_ROWS:,} rows, commit to replica, relay and consumer "
          f"running ({_load()}): {took:.2f} s (target at most 5 s: "
          f"{'met' if took <= 5 else 'NOT met'})")


def _delete_replica_objects() -> None:
    """Delete the queues cqrs_consume declared (work, delay, dead letter) and the
    exchange the relay and consumer used."""
    queue, exchange = settings.CQRS["queue"], settings.CQRS["exchange"]
    conn = pika.BlockingConnection(pika.URLParameters(settings.CQRS["url"]))
    try:
        channel = conn.channel()
        for name in (queue, f"{queue}.delay", f"dead_letter_{queue}"):
            channel.queue_delete(name)
        channel.exchange_delete(exchange)
    finally:
        conn.close()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _signed_settings() -> dict:
    if not _KEY_FILE:
        pem, _ = signing.generate()
        handle = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)  # noqa: SIM115
        handle.write(pem)
        handle.close()
        _KEY_FILE.append(handle.name)
    master = {**settings.CQRS.get("master", {}),
              "signing_key": {"id": "bench", "file": _KEY_FILE[0]}}
    return {**settings.CQRS, "master": master}


def _build_us(signed: bool) -> float:
    """Return microseconds per event the builder takes (median of 5 runs)."""
    author = models.Author(id=1, name="x" * 40, cqrs_revision=3)
    data = {"id": 1, "name": "x" * 40, "cqrs_revision": 3, "cqrs_updated": "2026-01-01"}
    cqrs = _signed_settings() if signed else settings.CQRS
    times = []
    with override_settings(CQRS=cqrs):
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(SIGN_SAMPLES):
                events.build(author, "SAVE", "default", data=data)
            times.append((time.perf_counter() - start) / SIGN_SAMPLES * 1e6)
    return statistics.median(times)


def _signing_cost() -> None:
    pem, _ = signing.generate()
    signer = signing.load_signer("bench", pem, "bench")
    body = events.build(models.Author(id=1, name="x" * 40, cqrs_revision=3), "SAVE",
                        "default", data={"id": 1, "name": "x" * 40, "cqrs_revision": 3,
                                         "cqrs_updated": "2026-01-01"}).payload.encode()
    start = time.perf_counter()
    for _ in range(SIGN_SAMPLES):
        signer.header(body)
    alone = (time.perf_counter() - start) / SIGN_SAMPLES * 1e6
    off, on = _build_us(False), _build_us(True)
    print(f"signing: builder {off:.1f} us/event off, {on:.1f} us/event on "
          f"(+{on - off:.1f} us); one Ed25519 signature of a {len(body)}-byte body "
          f"{alone:.1f} us")


def _measure(peer: Peer, scenario: str, rows: int, rounds: int, port: str) -> dict:
    if scenario == "bulk":
        rows *= 10  # bulk rounds would be one call otherwise
    columns = [c for c in COLUMNS if c != FLOOR or scenario in FLOOR_SCENARIOS]
    found: dict = {c: [] for c in columns}
    for _ in range(rounds):
        for column in columns:
            if column == "django-cqrs":
                found[column].append(peer.run(scenario, rows, port))
            else:
                found[column].append(_ours(scenario, column, rows, port))
    return {c: statistics.median(v) for c, v in found.items()}


def _round_trips(peer: Peer, proxy: Proxy, scenario: str, rows: int) -> dict:
    # Requests sent to the database per row, counted by the proxy: a figure the load
    # of a shared machine cannot move.
    found = {}
    for column in COLUMNS:
        if column == FLOOR and scenario not in FLOOR_SCENARIOS:
            continue
        before = proxy.sends()
        if column == "django-cqrs":
            peer.run(scenario, rows, proxy.port)
        else:
            _ours(scenario, column, rows, proxy.port)
        found[column] = (proxy.sends() - before) / rows
    return found


def _report(scenario: str, link: str, rates: dict) -> None:
    column, baseline, minimum = TARGETS[scenario]
    ratio = rates[column] / rates[baseline]
    print(
        f"{scenario:11} {link:8} plain {rates['plain']:7.0f}  outbox {rates['outbox']:7.0f}  "
        f"django-cqrs {rates['django-cqrs']:7.0f} rows/s   outbox/{baseline} {ratio:.2f} "
        f"(target {minimum:.1f}: {'met' if ratio >= minimum else 'NOT met'})"
        + (f"   outbox/plain {rates['outbox'] / rates['plain']:.2f}" if baseline != "plain"
           else "")
        + (f"   signed {rates[SIGNED]:7.0f} rows/s, signed/outbox "
           f"{rates[SIGNED] / rates['outbox']:.2f}" if SIGNED in rates else "")
        + (f"   floor {rates[FLOOR]:7.0f} rows/s, floor/plain "
           f"{rates[FLOOR] / rates['plain']:.2f}, outbox/floor "
           f"{rates['outbox'] / rates[FLOOR]:.2f}" if FLOOR in rates else "")
        + (f"   net {rates[NET]:7.0f} rows/s, net/outbox {rates[NET] / rates['outbox']:.2f} "
           f"(target 0.9: {'met' if rates[NET] >= 0.9 * rates['outbox'] else 'NOT met'})"
           if NET in rates else "")
        + f"   ({_load()})"
    )


def _broker(exchange: str, create: bool) -> None:
    # A connection per call: an idle BlockingConnection misses heartbeats during the run.
    conn = pika.BlockingConnection(pika.URLParameters(settings.CQRS["url"]))
    try:
        channel = conn.channel()
        queue = f"{exchange}_sink"
        if create:
            channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, exchange, routing_key="#")
        else:
            channel.queue_delete(queue)
            channel.exchange_delete(exchange)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100,
                        help="rows per round and column (x10 for bulk)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--delay-ms", type=float, default=0.5, help="round trip to add")
    parser.add_argument("--scenarios", default=",".join((*scenarios.SCENARIOS, CONCURRENT)),
                        help="comma-separated, of " + ", ".join((*scenarios.SCENARIOS,
                                                                 CONCURRENT)))
    parser.add_argument("--writers", type=int, default=8,
                        help="writer processes per column in the 'concurrent' scenario "
                             "(default %(default)s)")
    parser.add_argument("--signing", action="store_true",
                        help="add a column with signed events and print the signing cost")
    parser.add_argument("--floor", action="store_true",
                        help="add a column: plain writes plus prebuilt event rows, no "
                             "event building (autocommit, tx10, bulk, concurrent)")
    parser.add_argument("--capture", action="store_true",
                        help="add a column with the database capture triggers, and the "
                             "update() and raw-SQL figures")
    parser.add_argument("--database", choices=databases.DATABASES,
                        default=os.environ["CQRS_TEST_DB"],
                        help="where all columns write (default postgres)")
    args = parser.parse_args()
    if args.writers < 1:
        parser.error("--writers must be at least 1")
    global COLUMNS
    if args.signing:
        COLUMNS = (*COLUMNS, SIGNED)
    if args.capture:
        COLUMNS = (*COLUMNS, NET)
    if args.floor:
        COLUMNS = (*COLUMNS, FLOOR)
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    db = connection.settings_dict
    exchange = f"bench_{uuid.uuid4().hex[:8]}"
    _broker(exchange, create=True)
    direct = str(db["PORT"])
    proxy = _calibrated_proxy(db["HOST"], direct, args.delay_ms)
    peer = Peer(db["NAME"], exchange)
    try:
        connection.ensure_connection()
        driver = connection.Database.__name__
        added = _round_trip_ms(proxy.port) - _round_trip_ms(direct)
        print(f"{databases.server()}, driver {driver}: {args.rounds} "
              f"rounds x {args.rows} rows per column, median of rounds; proxy adds "
              f"{added:.2f} ms per round trip")
        if args.signing:
            _signing_cost()
        for scenario in args.scenarios.split(","):
            if scenario == CONCURRENT:
                crowd = Crowd(db["NAME"], exchange, args.writers)
                try:
                    _concurrent(crowd, args.writers, args.rows, args.rounds, direct)
                finally:
                    crowd.stop()
                continue
            _measure(peer, scenario, min(args.rows, 200), 1, direct)  # warm up
            for link, port in (("loopback", direct), ("+delay", proxy.port)):
                _report(scenario, link, _measure(peer, scenario, args.rows, args.rounds, port))
            rows = 1000 if scenario == "bulk" else 100
            trips = _round_trips(peer, proxy, scenario, rows)
            print(f"{scenario:11} requests to the database per row: "
                  + "  ".join(f"{c} {trips[c]:.2f}" for c in trips))
        if args.capture:
            _use_port(direct)
            _update_figures(max(3, args.rounds // 3))
            _raw_to_replica()
    finally:
        peer.stop()
        proxy.stop()
        _broker(exchange, create=False)
        _use_port(direct)
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
