"""Prometheus metrics of the replica workers, summed across `cqrs_consume -w N`.

Workers are forked processes, so they record in prometheus-client's multiprocess mode:
`serving()` makes a directory for this run, every worker writes its numbers to files
there, and the parent's HTTP endpoint adds them up. The consumer reports to an
`Observer`; the base class does nothing, which is what a consumer without a metrics
port gets.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import glob
import os
import re
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connections

from cqrs_outbox.core import probes, wire

PREFIX = "cqrs_replica"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TURN_RESOLUTION = 1.0  # seconds; the loop's heartbeat is written at most this often
LAG_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)
BATCH_BUCKETS = probes.BATCH_BUCKETS
# How a dead letter's reason (see consumer.py) maps to the `reason` label.
DEAD_REASONS = (
    ("bad message", "bad_message"),
    ("expired", "expired"),
    ("failed after", "retries_exhausted"),
    ("failed (", "retry_policy_error"),
)

UNKNOWN = "unknown"  # the cqrs_id label of every event whose cqrs_id no model registers

_enabled = False


class Observer:
    """Hear what a replica worker does; this base ignores it all."""

    def turned(self) -> None:
        """The consume loop turned (it is alive); what it did is now on record."""

    def connected(self, aliases: set[str]) -> None:
        """The worker consumes again; `aliases` are the databases it writes to."""

    def down(self, error: Exception) -> None:
        """The worker lost the broker or the database and backs off."""

    def batch(self, seconds: float) -> None:
        """A batch was applied (its transaction committed) in `seconds`."""

    def acknowledged(self, envelope: wire.Envelope, skipped: str) -> None:
        """An event was applied, or, when `skipped` names why (duplicate, stale,
        tombstoned), acknowledged without effect."""

    def retried(self, envelope: wire.Envelope) -> None:
        """A failed event went to the delay queue for another try."""

    def dead_lettered(self, envelope: wire.Envelope | None, reason: str) -> None:
        """A message went to the dead-letter queue."""


@dataclass(frozen=True)
class _Families:
    applied: Any
    skipped: Any
    retried: Any
    dead: Any
    batch_seconds: Any
    lag: Any
    broker_up: Any
    database_up: Any
    last_turn: Any


_families: _Families | None = None


def _create(registry: Any = None) -> _Families:
    prom = probes.require()
    registry = registry or prom.REGISTRY
    by_id, why = ["queue", "cqrs_id"], ["queue", "cqrs_id", "reason"]

    def counter(name: str, doc: str, labels: list[str]) -> Any:
        return prom.Counter(name, doc, labels, registry=registry)

    def gauge(name: str, doc: str) -> Any:
        # The lowest of the live workers: one worker down makes the service not ready.
        return prom.Gauge(name, doc, ["queue"], multiprocess_mode="livemin", registry=registry)

    def histogram(name: str, doc: str, labels: list[str], buckets: tuple) -> Any:
        return prom.Histogram(name, doc, labels, buckets=buckets, registry=registry)

    return _Families(
        applied=counter("cqrs_replica_events_applied_total", "Events applied.", by_id),
        skipped=counter("cqrs_replica_events_skipped_total",
                        "Events acknowledged without effect.", why),
        retried=counter("cqrs_replica_events_retried_total",
                        "Failed events sent to the delay queue.", by_id),
        dead=counter("cqrs_replica_events_dead_lettered_total",
                     "Messages sent to the dead-letter queue.", why),
        batch_seconds=histogram("cqrs_replica_apply_batch_seconds",
                                "Apply and commit of one batch.", ["queue"], BATCH_BUCKETS),
        lag=histogram("cqrs_replica_event_lag_seconds",
                      "An event's cqrs_updated to its apply.", by_id, LAG_BUCKETS),
        broker_up=gauge("cqrs_replica_broker_up",
                        "1 while the broker answers every worker, else 0."),
        database_up=gauge("cqrs_replica_database_up",
                          "1 while the database answers every worker, else 0."),
        last_turn=gauge("cqrs_replica_last_turn_timestamp_seconds",
                        "When the slowest worker's consume loop last turned."),
    )


def observer(queue: str, known: Collection[str] = ()) -> Observer:
    """Return the observer a worker of `queue` reports to: recording ones only when this
    process (or the parent it was forked from) serves metrics.

    Only the `known` cqrs_ids (those replica models register) become label values: a
    message's cqrs_id is whatever its sender wrote, and each value would be a new series.
    """
    global _families
    if not _enabled:
        return Observer()
    if _families is None:
        _families = _create()
    return ReplicaMetrics(queue, _families, known)


def updated_at(envelope: wire.Envelope) -> datetime.datetime | None:
    """Return the master's clock at the save an event carries (cqrs_updated), if any."""
    value = envelope.instance_data.get(wire.UPDATED_KEY)
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)


def dead_reason(reason: str) -> str:
    """Return the `reason` label of a dead letter's reason text."""
    for prefix, label in DEAD_REASONS:
        if reason.startswith(prefix):
            return label
    return "other"


class ReplicaMetrics(Observer):
    """Record one worker's work, labelled by queue and cqrs_id."""

    def __init__(self, queue: str, families: _Families, known: Collection[str] = ()) -> None:
        self.queue = queue
        self.f = families
        self.known = frozenset(known)
        self._broker_up = families.broker_up.labels(queue)
        self._database_up = families.database_up.labels(queue)
        self._last_turn = families.last_turn.labels(queue)
        self._batch = families.batch_seconds.labels(queue)
        self._children: dict[tuple, Any] = {}
        # Counted in plain Python per event, recorded once per turn of the loop: each
        # recording is a write to a shared file in multiprocess mode.
        self._counts: collections.Counter[tuple] = collections.Counter()
        self._lags: dict[str, list[float]] = collections.defaultdict(list)
        self._turned_at = 0.0
        self.turned()

    def _child(self, family: Any, *labels: str) -> Any:
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(self.queue, *labels)
        return child

    def turned(self) -> None:
        now = time.time()
        if now - self._turned_at >= TURN_RESOLUTION:
            self._turned_at = now
            self._last_turn.set(now)
        if self._counts:
            for (family, *labels), count in self._counts.items():
                self._child(family, *labels).inc(count)
            self._counts.clear()
        if self._lags:
            for cqrs_id, lags in self._lags.items():
                probes.observe_many(self._child(self.f.lag, cqrs_id), lags)
            self._lags.clear()

    def connected(self, aliases: set[str]) -> None:
        self._broker_up.set(1)
        up = 1
        for alias in aliases:
            try:
                connections[alias].ensure_connection()
            except Exception:  # noqa: BLE001 - only reported; applying will tell the rest
                up = 0
        self._database_up.set(up)

    def down(self, error: Exception) -> None:
        from cqrs_outbox.core.errors import DatabaseUnavailable

        self._turned_at = 0.0
        self.turned()
        if isinstance(error, DatabaseUnavailable):
            self._database_up.set(0)
        else:
            self._broker_up.set(0)

    def batch(self, seconds: float) -> None:
        self._batch.observe(seconds)
        self._database_up.set(1)

    def _label(self, envelope: wire.Envelope | None) -> str:
        cqrs_id = envelope.cqrs_id if envelope is not None else None
        return cqrs_id if isinstance(cqrs_id, str) and cqrs_id in self.known else UNKNOWN

    def acknowledged(self, envelope: wire.Envelope, skipped: str) -> None:
        cqrs_id = self._label(envelope)
        if skipped:
            self._counts[(self.f.skipped, cqrs_id, skipped)] += 1
            return
        self._counts[(self.f.applied, cqrs_id)] += 1
        updated = updated_at(envelope)
        if updated is not None:
            lag = (datetime.datetime.now(datetime.timezone.utc) - updated).total_seconds()
            self._lags[cqrs_id].append(max(0.0, lag))

    def retried(self, envelope: wire.Envelope) -> None:
        self._counts[(self.f.retried, self._label(envelope))] += 1

    def dead_lettered(self, envelope: wire.Envelope | None, reason: str) -> None:
        self._counts[(self.f.dead, self._label(envelope), dead_reason(reason))] += 1


# -- serving ------------------------------------------------------------------------

_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges of worker processes that are gone (crashed, restarted)."""
    probes.require()
    from prometheus_client import multiprocess

    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        found = _LIVE_FILE.search(name)
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _multiprocess(path: str) -> Any:
    """Make metrics created from now on (here and in forked workers) write to `path`."""
    prom = probes.require()
    os.environ[MULTIPROC_ENV] = path
    from prometheus_client import multiprocess, values

    # prometheus-client picks its value class at import; it may have been imported
    # (by the project) before the directory existed.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    registry = prom.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return registry


@contextlib.contextmanager
def serving(port: int | None, addr: str = probes.DEFAULT_ADDR) -> Iterator[None]:
    """Serve the workers' summed metrics and probes on `port` while inside (no-op if None).

    The multiprocess directory is this run's own and is removed on the way out.
    """
    global _enabled
    if port is None:
        yield
        return
    probes.require()
    path = tempfile.mkdtemp(prefix="cqrs-consume-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    try:
        registry = _multiprocess(path)
        server = probes.Server(addr, port, registry, PREFIX,
                               before_read=lambda: _forget_dead_workers(path))
        _enabled = True
        try:
            yield
        finally:
            _enabled = False
            server.close()
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)
