"""Replicate a few rows from the example master service to the example replica service.

`make demo` runs this with the project's virtualenv. It migrates both services on fresh
SQLite files, starts the replica's consumer (`manage.py cqrs_consume -w 1`) and the
master's relay (`manage.py cqrs_relay`), writes, updates and deletes rows on the master,
waits until the replica holds the same revisions, prints what arrived and how long it
took, and stops everything it started, also on Ctrl-C or failure.

RabbitMQ comes from CQRS_BROKER_URL (default amqp://guest:guest@127.0.0.1:5672/%2F). The
exchange and queue are named for this run only and removed at the end, so the demo never
meets the `cqrs` exchange of services running on the same broker, nor events left over
from an earlier run.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika
import pika.exceptions

from cqrs_outbox.core import contract, urls
from cqrs_outbox.core.errors import ConfigurationError

EXAMPLES = Path(__file__).resolve().parent
MASTER = EXAMPLES / "master_service"
REPLICA = EXAMPLES / "replica_service"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
HINT = "start it (sudo rabbitmq-server -detached, or `docker compose up -d rabbitmq`)"

CONNECT_TIMEOUT = 3  # seconds, for the reachability check
READY_TIMEOUT = 60  # seconds for the consumer to bind its queue
CATCH_UP_TIMEOUT = 60  # seconds for the replica to match the master
COMMAND_TIMEOUT = 120  # seconds for migrate and the writes
STOP_TIMEOUT = 15  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05  # seconds between looks at the replica
RELAY_POLL_INTERVAL = "0.1"  # seconds; SQLite has no NOTIFY, so the relay polls
LOG_TAIL = 20  # lines of a process log shown when something fails

# What the demo compares: (table on the master, table on the replica, label column on
# each, extra filter on the master).
TABLES = [
    ("catalog_publisher", "library_publisherref", "name", "title", ""),
    ("catalog_book", "library_bookref", "title", "title", "WHERE is_draft = 0"),
]


# The broker answered but would not let us in.
REFUSED = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
    pika.exceptions.AuthenticationError,
)


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


def broker_problem(url: str) -> str | None:
    """Return one line saying why RabbitMQ at `url` cannot be used, or None if it can."""
    try:
        address = urls.parse_broker_url(url, "CQRS_BROKER_URL")
    except ConfigurationError as exc:
        return f"{exc}; set CQRS_BROKER_URL to amqp://user:password@host:5672/vhost."
    where = f"RabbitMQ is not reachable at {address.safe_url}"
    try:
        socket.create_connection((address.host, address.port), CONNECT_TIMEOUT).close()
    except OSError as exc:
        return f"{where} ({exc.strerror or exc}): {HINT}, or set CQRS_BROKER_URL."
    try:
        connect(url).close()
    except REFUSED as exc:
        return f"{where} ({type(exc).__name__}): check user, password and vhost in CQRS_BROKER_URL."
    except pika.exceptions.AMQPError as exc:
        return f"{where} ({type(exc).__name__}): {HINT}, or set CQRS_BROKER_URL."
    return None


def connect(url: str) -> pika.BlockingConnection:
    """Open a connection that fails fast instead of retrying."""
    params = pika.URLParameters(url)
    params.socket_timeout = CONNECT_TIMEOUT
    params.stack_timeout = CONNECT_TIMEOUT
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


class Demo:
    """One run: its temporary databases, broker names and child processes."""

    def __init__(self, broker_url: str) -> None:
        run_id = uuid.uuid4().hex[:8]
        self.broker_url = broker_url
        self.exchange = f"cqrs_demo_{run_id}"
        self.queue = f"cqrs_demo_{run_id}_replica"
        self.workdir = Path(tempfile.mkdtemp(prefix="cqrs-demo-"))
        self.databases = {MASTER: self.workdir / "master.sqlite3",
                          REPLICA: self.workdir / "replica.sqlite3"}
        self.processes: dict[str, subprocess.Popen] = {}
        self.failed = True  # until run() returns

    def env(self, service: Path) -> dict:
        """Return the environment of a child process of `service`."""
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DATABASE_URL=f"sqlite:///{self.databases[service]}",
            CQRS_BROKER_URL=self.broker_url,
            CQRS_EXCHANGE=self.exchange,
            CQRS_QUEUE=self.queue,
            PYTHONUNBUFFERED="1",
        )
        return env

    def manage(self, service: Path, *args: str) -> str:
        """Run `manage.py <args>` in `service` to the end and return its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=service, env=self.env(service),
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        )
        if result.returncode != 0:
            raise DemoError(f"manage.py {' '.join(args)} failed:\n{result.stderr.strip()}")
        return result.stdout

    def start(self, name: str, service: Path, *args: str) -> None:
        """Start `manage.py <args>` in its own process group, logging to the work dir."""
        # A session of its own: Ctrl-C reaches only the demo, which then stops the whole
        # group (cqrs_consume's worker processes included) itself.
        with open(self.workdir / f"{name}.log", "w") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "manage.py", *args], cwd=service, env=self.env(service),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        print(f"      manage.py {' '.join(args)}  (pid {self.processes[name].pid})")

    def check_alive(self) -> None:
        """Raise DemoError if a child process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise DemoError(f"{name} exited with status {process.returncode}")

    def run(self) -> None:
        """Run the demo from migrations to the printed replica rows."""
        address = urls.parse_broker_url(self.broker_url)
        print(f"cqrs-outbox demo: RabbitMQ at {address.safe_url}, SQLite in {self.workdir}")
        print(f"      exchange {self.exchange}, queue {self.queue} (this run only)")
        print("[1/6] migrate the master and the replica databases")
        self.manage(MASTER, "migrate", "--noinput")
        self.manage(REPLICA, "migrate", "--noinput")
        print("[2/6] start the replica's consumer")
        self.start("consumer", REPLICA, "cqrs_consume", "-w", "1")
        waited = self.wait_for_consumer()
        print(f"      queue declared and bound, consuming after {waited:.1f} s")
        print("[3/6] start the master's relay")
        self.start("relay", MASTER, "cqrs_relay", "--poll-interval", RELAY_POLL_INTERVAL)
        waited = self.wait_for_relay()
        print(f"      relay connected after {waited:.1f} s")
        print("[4/6] write on the master: manage.py demo_writes")
        for line in self.manage(MASTER, "demo_writes").splitlines():
            print(f"      {line}")
        print("[5/6] wait until the replica holds the master's revisions")
        caught_up = self.wait_for_replica()
        print(f"      {self.lag_line(caught_up)}")
        self.report()
        self.raw_update()

    def raw_update(self) -> None:
        """Change a title in plain SQL, as psql, a data fix or another service would: the
        capture trigger records it and the relay turns it into an event."""
        sql = "UPDATE catalog_book SET title = title || ' (2nd ed.)' WHERE is_draft = 0"
        print(f"[6/6] outside Django, on the master's database: {sql}")
        with sqlite3.connect(self.databases[MASTER], timeout=5) as db:
            changed = db.execute(sql).rowcount
        committed = time.monotonic()
        self.wait_for_replica()
        print(f"      {changed} row(s) changed; the replica followed "
              f"{time.monotonic() - committed:.3f} s after the commit "
              "(CQRS['master']['capture'] = 'database')")

    def lag_line(self, caught_up: datetime.datetime) -> str:
        """Say how far the replica lagged, from the events' own timestamps: each event's
        commit (created_at) to the relay's publish (published_at), and the last commit to
        the moment the replica was seen holding every row (looked at every POLL_INTERVAL)."""
        query = f"SELECT id, created_at, published_at FROM {contract.OUTBOX_TABLE}"
        stamps = [(stamp(c), stamp(p)) for c, p in self.rows(MASTER, query).values()]
        if not stamps:
            return "no events in the master's outbox"
        last = max(created for created, _ in stamps)
        publish = sorted((p - c).total_seconds() for c, p in stamps if p is not None)
        text = (f"replica caught up {(caught_up - last).total_seconds():.3f} s after the last "
                f"of {len(stamps)} events was committed (seen within {POLL_INTERVAL} s)")
        if publish:
            text += (f"; commit to publish: median {publish[len(publish) // 2]:.3f} s, "
                     f"max {publish[-1]:.3f} s")
        return text

    def wait_for_consumer(self) -> float:
        """Wait until the replica's queue has a consumer; return the seconds waited."""
        started = time.monotonic()
        connection = connect(self.broker_url)
        try:
            while time.monotonic() - started < READY_TIMEOUT:
                self.check_alive()
                if self.consumers(connection) > 0:
                    return time.monotonic() - started
                time.sleep(0.2)
        finally:
            connection.close()
        raise DemoError(f"the consumer did not start consuming {self.queue} in {READY_TIMEOUT} s")

    def wait_for_relay(self) -> float:
        """Wait for the relay's start-up line (it is connected then), so the lag below is
        the relay's, not its start-up's; return the seconds waited."""
        started = time.monotonic()
        log = self.workdir / "relay.log"
        while time.monotonic() - started < READY_TIMEOUT:
            self.check_alive()
            if log.read_text().startswith("relay "):
                return time.monotonic() - started
            time.sleep(0.1)
        raise DemoError(f"the relay did not start within {READY_TIMEOUT} s")

    def consumers(self, connection: pika.BlockingConnection) -> int:
        """Return how many consumers the run's queue has (0 while it does not exist)."""
        channel = connection.channel()
        try:
            frame = channel.queue_declare(self.queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        channel.close()
        return frame.method.consumer_count

    def wait_for_replica(self) -> datetime.datetime:
        """Wait until every replicated table matches the master; return when it did (UTC,
        the clock of the events' timestamps)."""
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            if all(self.table_matches(*spec) for spec in TABLES):
                return datetime.datetime.now(datetime.timezone.utc)
            time.sleep(POLL_INTERVAL)
        raise DemoError(f"the replica did not match the master within {CATCH_UP_TIMEOUT} s")

    def table_matches(self, master: str, replica: str, label: str, replica_label: str,
                      where: str) -> bool:
        """Tell whether the replica's table holds the master's rows at their revisions."""
        try:
            expected = self.rows(MASTER, f"SELECT id, {label}, cqrs_revision FROM {master} {where}")
            found = self.rows(REPLICA, f"SELECT id, {replica_label}, cqrs_revision FROM {replica}")
        except sqlite3.OperationalError:
            return False  # a writer holds the lock: look again
        return expected == found

    def rows(self, service: Path, query: str) -> dict:
        """Return {id: (label, revision)} read by `query` from `service`'s database."""
        uri = f"file:{self.databases[service]}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=5) as db:
            return {row[0]: row[1:] for row in db.execute(query)}

    def report(self) -> None:
        """Print the replica's rows and the master outbox's counts."""
        print("\nArrived at the replica, library.PublisherRef (CQRS_MAPPING name -> title):")
        query = "SELECT id, title, cqrs_revision FROM library_publisherref ORDER BY id"
        for pk, (title, revision) in self.rows(REPLICA, query).items():
            print(f"  id={pk:<3} title={title!r:<24} revision={revision}")
        print("Arrived at the replica, library.BookRef (from the master's CQRS_SERIALIZER):")
        query = (
            "SELECT id, title, price, publisher_name, cqrs_revision FROM library_bookref"
            " ORDER BY id"
        )
        for pk, (title, price, publisher, revision) in self.rows(REPLICA, query).items():
            print(f"  id={pk:<3} title={title!r:<28} price={float(price):<6.2f} "
                  f"publisher={publisher!r:<24} revision={revision}")
        query = f"SELECT status, count(*) FROM {contract.OUTBOX_TABLE} GROUP BY status"
        counts = ", ".join(f"{n} {status}" for status, (n,) in self.rows(MASTER, query).items())
        print(f"Master outbox: {counts} events. The deleted book is gone from the replica; "
              "the draft never left the master (is_sync_instance() is False).")

    def stop(self) -> None:
        """Stop the child processes, remove the run's broker objects and files."""
        for name, process in self.processes.items():
            print(f"      {name}: {stop_process(process)}")
            if self.failed:
                show_log(self.workdir / f"{name}.log", name)
        self.delete_broker_objects()
        if self.failed:
            print(f"Logs and databases kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def delete_broker_objects(self) -> None:
        """Delete the run's queues and exchange (those that exist)."""
        # The work queue, and the delay and dead-letter queues cqrs_consume declares
        # next to it (their default names).
        names = [self.queue, f"{self.queue}.delay", f"dead_letter_{self.queue}"]
        try:
            connection = connect(self.broker_url)
        except pika.exceptions.AMQPError:
            return
        try:
            channel = connection.channel()
            for name in names:
                channel.queue_delete(name)
            channel.exchange_delete(self.exchange)
        finally:
            connection.close()


def stamp(value: str | None) -> datetime.datetime | None:
    """Read a timestamp as Django stores it in SQLite (UTC text) as an aware datetime."""
    if value is None:
        return None
    parsed = datetime.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def stop_process(process: subprocess.Popen) -> str:
    """Send SIGTERM to a child's process group, SIGKILL if it lingers; say how it ended."""
    if process.poll() is not None:
        signal_group(process, signal.SIGKILL)  # whatever it left behind in its group
        return f"had already exited with status {process.returncode}"
    signal_group(process, signal.SIGTERM)
    try:
        return f"stopped by SIGTERM, exit status {process.wait(STOP_TIMEOUT)}"
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait()
        return f"did not stop within {STOP_TIMEOUT} s of SIGTERM: killed"


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the process group the child leads, if anything is left in it."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def show_log(path: Path, name: str) -> None:
    """Print the last lines of a child's log to stderr."""
    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    print(f"--- last lines of the {name} log ---", file=sys.stderr)
    print("\n".join(lines) or "(empty)", file=sys.stderr)


def main() -> int:
    """Run the demo; return the exit status."""
    logging.getLogger("pika").setLevel(logging.CRITICAL + 1)  # failures are reported here
    broker_url = os.environ.get("CQRS_BROKER_URL", DEFAULT_BROKER_URL)
    problem = broker_problem(broker_url)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    demo = Demo(broker_url)
    try:
        demo.run()
        demo.failed = False
        return 0
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        demo.failed = False  # asked for: nothing to keep
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        print("Stopping what the demo started:")
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
