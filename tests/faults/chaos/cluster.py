"""The processes of a chaos run: writers on the master, relays and replica consumers.

Each relay and each consumer reaches PostgreSQL and RabbitMQ through two loopback proxies
of its own, so one process's connections can be cut without touching the others'. The
writers talk to the master database directly: master writes must go on whatever happens
downstream. One relay runs as `python -m relay`, the other as `manage.py cqrs_relay`, so
both ways of running it are under fire.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.chaos import resources
from tests.support.processes import Service
from tests.support.tcpproxy import TcpProxy

STOP_TIMEOUT = 30.0  # seconds a SIGTERMed process may take to exit
# Seconds a process gets to start before it is stopped: a SIGTERM that lands while the
# interpreter still imports kills it before any handler exists, which proves nothing.
STARTUP = 3.0


@dataclass(frozen=True)
class Tuning:
    """How the relays and consumers are configured for a run."""

    lease_ttl: float = 2.0  # seconds: a killed relay's partitions move quickly
    poll_interval: float = 0.2  # seconds
    relay_batch: int = 100  # events per relay batch
    consumer_batch: int = 50  # events per replica transaction
    prefetch: int = 200  # unacknowledged messages per consumer


@dataclass
class Node:
    """A relay or consumer process and the proxies its connections go through."""

    role: str  # 'relay' or 'consumer'
    service: Service
    database: TcpProxy
    broker: TcpProxy

    @property
    def name(self) -> str:
        return self.service.name


def _django(command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "django", command, f"--settings={resources.SETTINGS}", *args]


class Cluster:
    """Start, watch and stop every process of the run."""

    def __init__(self, names: resources.Names, log_dir: Path, tuning: Tuning) -> None:
        self.names = names
        self.log_dir = log_dir
        self.tuning = tuning
        self.nodes: list[Node] = []
        self.writers: list[Service] = []
        self._proxies: list[TcpProxy] = []

    # -- building ----------------------------------------------------------------------

    def _proxies_for(self) -> tuple[TcpProxy, TcpProxy]:
        broker = urlsplit(resources.BROKER_URL)
        pair = (
            TcpProxy(resources.PG_HOST, resources.PG_PORT).start(),
            TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start(),
        )
        self._proxies.extend(pair)
        return pair

    def _env(self, database: str, db: TcpProxy, mq: TcpProxy) -> dict[str, str]:
        return {
            "CQRS_TEST_DB_NAME": database,
            "CQRS_TEST_EXCHANGE": self.names.exchange,
            "CQRS_TEST_QUEUE": self.names.queue,
            "CQRS_BROKER_URL": mq.url(resources.BROKER_URL),
            "PGHOST": db.host,
            "PGPORT": str(db.port),
            "PYTHONUNBUFFERED": "1",
        }

    def _relay_options(self) -> list[str]:
        t = self.tuning
        return ["--lease-ttl", str(t.lease_ttl), "--poll-interval", str(t.poll_interval),
                "--batch-size", str(t.relay_batch)]

    def add_standalone_relay(self, name: str) -> Node:
        """Add a `python -m relay` process that reads its URLs from its arguments."""
        db, mq = self._proxies_for()
        url = f"postgresql://{resources.PG_USER}@{db.host}:{db.port}/{self.names.master_db}"
        argv = [sys.executable, "-m", "relay", "--database-url", url,
                "--broker-url", mq.url(resources.BROKER_URL), "--exchange", self.names.exchange,
                "--owner", name, *self._relay_options()]
        env = self._env(self.names.master_db, db, mq)
        return self._add(Node("relay", Service(name, argv, env, self.log_dir), db, mq))

    def add_django_relay(self, name: str) -> Node:
        """Add a `manage.py cqrs_relay` process on the test project's settings."""
        db, mq = self._proxies_for()
        argv = _django("cqrs_relay", *self._relay_options())
        env = self._env(self.names.master_db, db, mq)
        return self._add(Node("relay", Service(name, argv, env, self.log_dir), db, mq))

    def add_consumer(self, name: str) -> Node:
        """Add a `manage.py cqrs_consume` process on the replica database."""
        db, mq = self._proxies_for()
        t = self.tuning
        argv = _django("cqrs_consume", "-w", "1", "--batch-size", str(t.consumer_batch),
                       "--prefetch-count", str(t.prefetch))
        env = self._env(self.names.replica_db, db, mq)
        return self._add(Node("consumer", Service(name, argv, env, self.log_dir), db, mq))

    def add_writer(self, seconds: float, seed: int, pause: float) -> Service:
        """Add a writer process on the master database (no proxy)."""
        argv = [sys.executable, "-m", "tests.faults.chaos.writer", "--seconds", str(seconds),
                "--seed", str(seed), "--pause", str(pause)]
        env = {"CQRS_TEST_DB_NAME": self.names.master_db, "PYTHONUNBUFFERED": "1"}
        writer = Service(f"writer-{len(self.writers)}", argv, env, self.log_dir)
        self.writers.append(writer)
        return writer

    def _add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    # -- running -----------------------------------------------------------------------

    def role(self, role: str) -> list[Node]:
        """Return the nodes of one role."""
        return [node for node in self.nodes if node.role == role]

    def heal(self) -> None:
        """Open and thaw every proxy."""
        for proxy in self._proxies:
            proxy.open()
            proxy.thaw()

    def stop_writers(self) -> tuple[dict[str, int], list[str]]:
        """SIGTERM the writers; return their summed counts and what went wrong."""
        totals: dict[str, int] = {}
        problems = []
        for writer in self.writers:
            code = writer.terminate(STOP_TIMEOUT)
            counts = _last_json(writer.log())
            if code != 0 or counts is None:
                problems.append(f"{writer.name} ended with status {code}: see {writer.log_path}")
            for key, value in (counts or {}).items():
                totals[key] = totals.get(key, 0) + value
        return totals, problems

    def stop(self, nodes: list[Node]) -> list[str]:
        """SIGTERM `nodes` together; return a problem for each that did not exit with 0."""
        youngest = min((n.service.uptime for n in nodes if n.service.alive), default=STARTUP)
        time.sleep(max(0.0, STARTUP - youngest))
        for node in nodes:
            if node.service.alive:
                node.service.terminate(0)
        problems = []
        for node in nodes:
            code = node.service.terminate(STOP_TIMEOUT)
            if code != 0:
                problems.append(f"{node.name} exited with {code} on SIGTERM: see "
                                f"{node.service.log_path}")
                node.service.kill()
        return problems

    def close(self) -> None:
        """Kill every process and stop every proxy, whatever state they are in."""
        for service in [*self.writers, *(node.service for node in self.nodes)]:
            service.kill()
        for proxy in self._proxies:
            proxy.stop()


def _last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
