"""The built wheel, installed as a user would, runs the example services end to end.

`python -m build` makes the sdist and, from it, the wheel; the wheel goes into a fresh
virtualenv with the `psycopg` extra only (so no psycopg2), and the example services run
from copies outside the checkout, so every import comes from the installed wheel. That
catches package data the wheel lacks (templates, migrations) and a dependency on psycopg2.

On Python 3.12 and later pip picks Django 6, and the end-to-end test then runs the
standalone relay and `cqrs_consume` on Django 6 with psycopg 3 alone: a write reaches
the broker within milliseconds through LISTEN/NOTIFY, and cuts of the relay's database
link and of both broker links lose nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from tests.support import names
from tests.support.processes import Service
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT", "5432"))
PG_USER = os.environ.get("PGUSER", "postgres")
BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
INSTALL_TIMEOUT = 600  # seconds for the build and the install
COMMAND_TIMEOUT = 120  # seconds for one manage.py command
# The relay polls this rarely, so an event that arrives quickly came through NOTIFY.
RELAY_POLL = "30"  # seconds
LATENCY_WRITES = 40  # single-row transactions timed from commit to the broker
LATENCY_P50_LIMIT = 0.020  # seconds, the bar for "instant" wake-up
OUTAGE = 2.0  # seconds a proxy stays closed

# Run in the wheel's virtualenv with the example master's settings: save publishers one
# per transaction, a short pause apart, and print each one's pk and commit time.
WRITER = """
import json, sys, time
import django
django.setup()
from django.db import transaction
from catalog.models import Publisher
count, prefix, pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
for i in range(count):
    with transaction.atomic():
        publisher = Publisher.objects.create(name=f"{prefix}-{i}")
    print(json.dumps({"pk": publisher.pk, "committed": time.time()}), flush=True)
    time.sleep(pause)
"""
SQL = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cursor = conn.execute(sys.argv[2])
    rows = cursor.fetchall() if cursor.description else []
print(rows[0][0] if rows else "")
"""
VERSIONS = """
import importlib.util, django, psycopg
print(django.VERSION[0], psycopg.__version__, importlib.util.find_spec("psycopg2") is not None)
"""


@dataclass
class Installed:
    python: Path
    wheel: Path
    sdist: Path
    examples: Path
    build_log: str

    def run(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> str:
        """Run the virtualenv's python; return stdout, failing with stderr on an error."""
        result = subprocess.run([str(self.python), *args], capture_output=True, text=True,
                                env=_clean_env(env), cwd=cwd or self.examples,
                                timeout=COMMAND_TIMEOUT)
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout


def _clean_env(extra: dict | None = None) -> dict:
    """Return an environment that cannot import from the checkout or the test's venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    return {**env, **(extra or {})}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """Build the sdist and wheel, and install the wheel with the psycopg extra."""
    base = tmp_path_factory.mktemp("wheel")
    dist, venv = base / "dist", base / "venv"
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                           check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", f"{wheel}[psycopg]"],
                   check=True, timeout=INSTALL_TIMEOUT, env=_clean_env())
    examples = base / "examples"
    shutil.copytree(ROOT / "examples", examples,
                    ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"))
    return Installed(venv / "bin" / "python", wheel, sdist, examples,
                     build.stdout + build.stderr)


def test_build__setuptools_has_nothing_to_warn_about(installed):
    """A deprecation or an ambiguous package layout shows in the build's log as a boxed
    warning; the release build must have none."""
    warnings = [line for line in installed.build_log.splitlines()
                if "warning" in line.lower() and "byte-compiling is disabled" not in line]
    assert warnings == []
    assert "Package would be ignored" not in installed.build_log


def test_wheel__carries_the_admin_templates_and_every_migration(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for source in [*(ROOT / "cqrs_outbox" / "templates").rglob("*.html"),
                   *(ROOT / "cqrs_outbox" / "migrations").glob("0*.py")]:
        assert str(source.relative_to(ROOT)) in names
    assert "relay/__main__.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_wheel__example_services_migrate_and_check_from_the_installed_package(
    installed, tmp_path
):
    where = installed.run("-c", "import cqrs_outbox, relay; print(cqrs_outbox.__file__)")
    assert where.startswith(str(installed.python.parent.parent))
    for service in ("master_service", "replica_service"):
        env = {"DATABASE_URL": f"sqlite:///{tmp_path / service}.sqlite3"}
        manage = str(installed.examples / service / "manage.py")
        installed.run(manage, "migrate", "--noinput", "-v", "0", env=env)
        assert "no issues" in installed.run(manage, "check", env=env)
    master = {"DATABASE_URL": f"sqlite:///{tmp_path / 'master_service'}.sqlite3"}
    shown = installed.run(
        str(installed.examples / "master_service" / "manage.py"), "shell", "-c",
        "from django.template.loader import get_template; print(get_template("
        "'admin/cqrs_outbox/outboxevent/change_list.html').origin.name)", env=master)
    assert shown.strip().splitlines()[-1].startswith(str(installed.python.parent.parent))


# -- end to end on Django 6 with psycopg 3 only ----------------------------------------


class Tap:
    """A queue of the test's own on the exchange, noting when each event arrived."""

    def __init__(self, exchange: str) -> None:
        self.queue = names.unique("wheel_tap")
        self.connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, exchange, "#")
        self.arrived: dict[str, float] = {}
        self.channel.basic_consume(self.queue, self._on_message, auto_ack=True)

    def _on_message(self, channel, method, properties, body) -> None:
        now = time.time()
        self.arrived.setdefault(str(json.loads(body)["instance_pk"]), now)

    def pump(self, seconds: float = 0.05) -> None:
        self.connection.process_data_events(time_limit=seconds)

    def close(self, exchange: str, *queues: str) -> None:
        for queue in (self.queue, *queues):
            self.channel.queue_delete(queue)
        self.channel.exchange_delete(exchange)
        self.connection.close()


@pytest.fixture
def databases(installed):
    """Create a master and a replica database; drop them after."""
    run = uuid.uuid4().hex[:8]
    created = {"master": f"wheel_master_{run}", "replica": f"wheel_replica_{run}"}
    admin = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
    for name in created.values():
        installed.run("-c", SQL, admin, f'CREATE DATABASE "{name}"')
    yield created
    for name in created.values():
        installed.run("-c", SQL, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(database: str, host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"postgresql://{PG_USER}@{host}:{port}/{database}"


def _write(installed: Installed, env: dict, count: int, prefix: str,
           pause: float, tap: Tap) -> dict[str, float]:
    """Run the writer while the tap reads; return commit times by pk."""
    writer = subprocess.Popen(
        [str(installed.python), "-c", WRITER, str(count), prefix, str(pause)],
        cwd=installed.examples / "master_service", env=_clean_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while writer.poll() is None:
        tap.pump()
    out, err = writer.communicate(timeout=COMMAND_TIMEOUT)
    assert writer.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    return {str(row["pk"]): row["committed"] for row in rows}


def test_wheel_venv__django6_psycopg3_only__relay_and_consumer_survive_cuts(
    installed, databases, tmp_path
):
    major, psycopg_version, has_psycopg2 = installed.run("-c", VERSIONS).split()
    if sys.version_info < (3, 12):
        pytest.skip(f"Django 6 needs Python 3.12+; pip chose Django {major} here")
    assert int(major) >= 6 and has_psycopg2 == "False", (major, has_psycopg2)
    exchange, queue = names.unique("wheel_ex"), names.unique("wheel_q")
    master_env = {"DATABASE_URL": _url(databases["master"]), "CQRS_EXCHANGE": exchange,
                  "DJANGO_SETTINGS_MODULE": "master_service.settings"}
    for service, database in (("master_service", "master"), ("replica_service", "replica")):
        installed.run(str(installed.examples / service / "manage.py"), "migrate", "-v", "0",
                      env={"DATABASE_URL": _url(databases[database])})
    tap = Tap(exchange)
    with TcpProxy(PG_HOST, PG_PORT) as db_link, TcpProxy(BROKER_HOST, BROKER_PORT) as mq_link:
        # Service starts in the checkout: -P keeps it off sys.path, so `-m relay` is the
        # wheel's; the settings variable of this test run must not reach the children.
        venv_bin = {"PATH": f"{installed.python.parent}:{os.environ['PATH']}",
                    "PYTHONPATH": "", "DJANGO_SETTINGS_MODULE": "replica_service.settings"}
        relay = Service("relay", [
            str(installed.python), "-P", "-m", "relay",
            "--database-url", _url(databases["master"], db_link.host, db_link.port),
            "--broker-url", mq_link.url(BROKER_URL), "--exchange", exchange,
            "--poll-interval", RELAY_POLL, "--lease-ttl", "3"], venv_bin, tmp_path)
        consumer = Service("consumer", [
            str(installed.python), str(installed.examples / "replica_service" / "manage.py"),
            "cqrs_consume", "-w", "1"],
            {**venv_bin, "DATABASE_URL": _url(databases["replica"]),
             "CQRS_BROKER_URL": mq_link.url(BROKER_URL), "CQRS_EXCHANGE": exchange,
             "CQRS_QUEUE": queue}, tmp_path)
        try:
            _end_to_end(installed, databases, tap, relay, consumer, db_link, mq_link,
                        master_env)
        finally:
            for service in (relay, consumer):
                if service.terminate(30) is None:
                    service.kill()
            tap.close(exchange, queue, f"{queue}.delay", f"dead_letter_{queue}")
    assert relay.exit_code == 0 and consumer.exit_code == 0, relay.log() + consumer.log()
    assert "Traceback" not in relay.log(), relay.log()
    assert relay.log().count("database unavailable") == 1, relay.log()
    assert relay.log().count("broker unavailable") == 1, relay.log()


def _end_to_end(installed, databases, tap, relay, consumer, db_link, mq_link, master_env):
    relay.start()
    consumer.start()
    wait_until(lambda: "running" in relay.log(), what="the relay running")
    wait_until(lambda: "consuming queue" in consumer.log(), what="the consumer's start-up")
    assert "(psycopg 3." in relay.log(), relay.log()
    assert "(psycopg 3." in consumer.log(), consumer.log()
    time.sleep(1.0)  # the relay takes its leases and goes to sleep on LISTEN

    committed = _write(installed, master_env, LATENCY_WRITES, "timed", 0.1, tap)
    wait_until(lambda: tap.pump() or set(committed) <= set(tap.arrived), what="timed events")
    latencies = sorted(tap.arrived[pk] - committed[pk] for pk in committed)
    p50 = statistics.median(latencies)
    print(f"commit to broker over {len(latencies)} writes: p50 {p50 * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms (relay polls every {RELAY_POLL} s)")
    assert p50 < LATENCY_P50_LIMIT, latencies

    expected = len(committed)
    for link, name in ((db_link, "database"), (mq_link, "broker")):
        link.close()
        expected += len(_write(installed, master_env, 10, f"during-{name}-cut", 0.1, tap))
        time.sleep(OUTAGE)
        link.open()
        wait_until(lambda want=expected: _replica_count(installed, databases) == want,
                   timeout=120, what=f"the replica to catch up after the {name} cut")
    assert relay.alive and consumer.alive


def _replica_count(installed: Installed, databases: dict) -> int:
    count = installed.run("-c", SQL, _url(databases["replica"]),
                          "SELECT count(*) FROM library_publisherref")
    return int(count.strip() or 0)
