"""Prometheus metrics of the relay, and the observer the drain loop reports to.

The engine calls an `Observer` at each thing worth counting; the base class does
nothing, so a relay without prometheus-client pays nothing. `RelayMetrics` records into
a prometheus-client registry, which is imported only when one is built: the
`metrics` extra is optional.
"""

from __future__ import annotations

import collections
import datetime
import time
import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cqrs_outbox import store
from cqrs_outbox.core import probes
from cqrs_outbox.store.dbapi import Database

PREFIX = "cqrs_outbox"
SAMPLE_INTERVAL = 5.0  # seconds between the pending/failed counting queries
# Commit-to-publish spans milliseconds (a live relay) to hours (a backlog after an outage).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 900.0, 3600.0,
)


class Observer:
    """Hear what the drain loop does; this base ignores it all."""

    def turned(self, db: Database, partitions_held: int) -> None:
        """A turn of the loop went through: database and broker are up."""

    def down(self, what: str) -> None:
        """The loop lost `what` ('broker' or 'database') and backs off."""

    def up(self, what: str) -> None:
        """`what` answered, though the turn as a whole did not go through."""

    def settled(self, rows: Sequence[store.Pending], skipped: Collection[int],
                claimed_at: float, now: datetime.datetime) -> None:
        """A batch claimed at `claimed_at` (monotonic) was marked; `skipped` ids were not
        published (returned or refused)."""

    def returned(self, row: store.Pending) -> None:
        """The broker returned an event as unroutable."""

    def refused(self, row: store.Pending, failed: bool) -> None:
        """The broker refused an event; `failed` when that was its last attempt."""

    def nacked(self, rows: Sequence[store.Pending]) -> None:
        """The broker nacked these events; they stay pending and go out again."""

    def purged(self, count: int) -> None:
        """Old published events were deleted."""

    def captured(self, cqrs_id: str, count: int) -> None:
        """`count` changes of `cqrs_id` made outside the ORM became events."""

    def close(self) -> None:
        """The relay stopped: let go of what the observer holds (an HTTP endpoint)."""


@dataclass(frozen=True)
class _Families:
    published: Any
    returned: Any
    refused: Any
    nacked: Any
    failed: Any
    purged: Any
    batch_seconds: Any
    commit_to_publish: Any
    pending: Any
    failed_events: Any
    oldest_age: Any
    partitions: Any
    broker_up: Any
    database_up: Any
    last_turn: Any
    returned_events: Any
    captured: Any


_families: weakref.WeakKeyDictionary[Any, _Families] = weakref.WeakKeyDictionary()


def _create(registry: Any) -> _Families:
    prom = probes.require()
    db, by_id = ["database"], ["database", "cqrs_id"]

    def counter(name: str, doc: str, labels: list[str]) -> Any:
        return prom.Counter(name, doc, labels, registry=registry)

    def gauge(name: str, doc: str) -> Any:
        return prom.Gauge(name, doc, db, registry=registry)

    def histogram(name: str, doc: str, buckets: Sequence[float]) -> Any:
        return prom.Histogram(name, doc, db, buckets=buckets, registry=registry)

    return _Families(
        published=counter("cqrs_outbox_events_published_total",
                          "Events the broker confirmed.", by_id),
        returned=counter("cqrs_outbox_events_returned_total",
                         "Events returned unroutable.", by_id),
        refused=counter("cqrs_outbox_events_refused_total",
                        "Broker refusals of events, counted toward max_attempts.", by_id),
        nacked=counter("cqrs_outbox_events_nacked_total",
                       "Events the broker nacked; published again, no attempt counted.", by_id),
        failed=counter("cqrs_outbox_events_failed_total",
                       "Events marked failed after refusals.", by_id),
        captured=counter("cqrs_outbox_captured_outside_orm_total",
                         "Row changes made outside the ORM that the capture triggers "
                         "caught and turned into events.", by_id),
        purged=counter("cqrs_outbox_purged_total",
                       "Published events deleted after retention.", db),
        batch_seconds=histogram("cqrs_outbox_publish_batch_seconds",
                                "Claim to mark of one batch.", probes.BATCH_BUCKETS),
        commit_to_publish=histogram("cqrs_outbox_commit_to_publish_seconds",
                                    "Event created_at to broker confirm.", LATENCY_BUCKETS),
        pending=gauge("cqrs_outbox_pending_events", "Events waiting to be published."),
        failed_events=gauge("cqrs_outbox_failed_events",
                            "Events that failed and wait for a retry."),
        oldest_age=gauge("cqrs_outbox_oldest_pending_age_seconds",
                         "Age of the oldest pending event."),
        partitions=gauge("cqrs_outbox_partitions_held", "Outbox partitions this relay holds."),
        broker_up=gauge("cqrs_outbox_broker_up",
                        "1 while the broker answers the relay, else 0."),
        database_up=gauge("cqrs_outbox_database_up",
                          "1 while the database answers the relay, else 0."),
        last_turn=gauge("cqrs_outbox_last_turn_timestamp_seconds",
                        "When the drain loop last turned."),
        returned_events=prom.Gauge(
            "cqrs_outbox_returned_events",
            "Events returned unroutable and not replayed yet, per routing key.",
            ["database", "routing_key"], registry=registry),
    )


def families(registry: Any = None) -> _Families:
    """Return the relay's metric families in `registry` (default: the global one),
    registering them on first use."""
    if registry is None:
        registry = probes.require().REGISTRY
    found = _families.get(registry)
    if found is None:
        found = _families[registry] = _create(registry)
    return found


class RelayMetrics(Observer):
    """Record the relay's work as Prometheus metrics labelled by database alias."""

    def __init__(self, database: str = "default", registry: Any = None) -> None:
        self.database = database
        self.registry = registry if registry is not None else probes.require().REGISTRY
        f = self.f = families(self.registry)
        self._by_id: dict[tuple[Any, str], Any] = {}
        self._batch = f.batch_seconds.labels(database)
        self._latency = f.commit_to_publish.labels(database)
        self._up = {"broker": f.broker_up.labels(database),
                    "database": f.database_up.labels(database)}
        self._last_turn = f.last_turn.labels(database)
        self._next_sample = 0.0
        self._returned_keys: set[str] = set()
        self._last_turn.set_to_current_time()
        self.server: Any = None  # the endpoint serving this registry, closed with the relay

    def _counter(self, family: Any, cqrs_id: str) -> Any:
        key = (family, cqrs_id)
        child = self._by_id.get(key)
        if child is None:
            child = self._by_id[key] = family.labels(self.database, cqrs_id)
        return child

    def turned(self, db: Database, partitions_held: int) -> None:
        self._last_turn.set_to_current_time()
        for gauge in self._up.values():
            gauge.set(1)
        self.f.partitions.labels(self.database).set(partitions_held)
        if time.monotonic() >= self._next_sample:
            self._next_sample = time.monotonic() + SAMPLE_INTERVAL
            self.sample(db)

    def sample(self, db: Database) -> None:
        """Count pending, failed and returned events (queries over the small partial
        indexes)."""
        summary = store.summary(db)
        self.f.pending.labels(self.database).set(summary.pending)
        self.f.failed_events.labels(self.database).set(summary.failed)
        self.f.oldest_age.labels(self.database).set(summary.oldest_pending_age() or 0.0)
        keys = dict(summary.returned_by_key)
        for gone in self._returned_keys - keys.keys():  # replayed: the series ends
            self.f.returned_events.remove(self.database, gone)
        for key, count in keys.items():
            self.f.returned_events.labels(self.database, key).set(count)
        self._returned_keys = set(keys)

    def down(self, what: str) -> None:
        self._last_turn.set_to_current_time()  # the loop still turns, backing off
        self._up[what].set(0)

    def up(self, what: str) -> None:
        self._up[what].set(1)

    def captured(self, cqrs_id: str, count: int) -> None:
        self._counter(self.f.captured, cqrs_id).inc(count)

    def settled(self, rows: Sequence[store.Pending], skipped: Collection[int],
                claimed_at: float, now: datetime.datetime) -> None:
        self._batch.observe(time.monotonic() - claimed_at)
        self._last_turn.set_to_current_time()
        per_id: collections.Counter[str] = collections.Counter()
        latencies = []
        for row in rows:
            if row.id in skipped:
                continue
            per_id[row.cqrs_id] += 1
            if row.created_at is not None:
                latencies.append(max(0.0, (now - row.created_at).total_seconds()))
        probes.observe_many(self._latency, latencies)
        for cqrs_id, count in per_id.items():
            self._counter(self.f.published, cqrs_id).inc(count)

    def returned(self, row: store.Pending) -> None:
        self._counter(self.f.returned, row.cqrs_id).inc()
        # Up at once; the next sample counts the table again (and sees replays).
        self.f.returned_events.labels(self.database, row.routing_key).inc()
        self._returned_keys.add(row.routing_key)

    def refused(self, row: store.Pending, failed: bool) -> None:
        self._counter(self.f.refused, row.cqrs_id).inc()
        if failed:
            self._counter(self.f.failed, row.cqrs_id).inc()

    def nacked(self, rows: Sequence[store.Pending]) -> None:
        for cqrs_id, count in collections.Counter(row.cqrs_id for row in rows).items():
            self._counter(self.f.nacked, cqrs_id).inc(count)

    def purged(self, count: int) -> None:
        if count:
            self.f.purged.labels(self.database).inc(count)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


def serve_relay(port: int, addr: str = probes.DEFAULT_ADDR, database: str = "default",
                registry: Any = None) -> tuple[RelayMetrics, probes.Server]:
    """Return a relay observer and the server publishing what it records."""
    observer = RelayMetrics(database, registry)
    observer.server = probes.Server(addr, port, observer.registry, PREFIX)
    return observer, observer.server
