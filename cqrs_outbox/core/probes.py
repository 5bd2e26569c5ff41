"""The probes the relay and the replica share: prometheus-client on demand, and
`/metrics`, `/healthz` and `/readyz` served over HTTP from a background thread.

The probes read the same numbers Prometheus scrapes: `<prefix>_last_turn_timestamp_seconds`
(when the main loop last turned) and `<prefix>_broker_up` / `<prefix>_database_up`
(what the loop saw last). One reading serves the relay, which keeps them in its own
registry, and the replica workers, whose forked processes write them to files that
the serving parent sums. The HTTP side is `cqrs_outbox.core.httpd`: a fixed number of threads,
and no client can hold one for long.
"""

from __future__ import annotations

import bisect
import collections
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cqrs_outbox.core import httpd
from cqrs_outbox.core.errors import ConfigurationError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'cqrs-outbox[metrics]'"
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def require() -> Any:
    """Import prometheus_client, or raise ConfigurationError saying what to install."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            f"metrics need prometheus-client, which is not installed: {INSTALL_HINT}"
        ) from exc
    return prometheus_client


def available() -> bool:
    """Return whether prometheus-client can be imported."""
    try:
        require()
    except ConfigurationError:
        return False
    return True


def observe_many(histogram: Any, values: Sequence[float]) -> None:
    """Observe many values: one increment per bucket touched rather than one per value.

    prometheus-client offers only `observe(value)`, whose cost per call matters at
    thousands of events a second; this reaches into its histogram's buckets, and falls
    back to `observe()` per value if a release ever lays them out otherwise.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if not values:
        return
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    counts = collections.Counter(bisect.bisect_left(bounds, value) for value in values)
    for index, count in counts.items():
        buckets[index].inc(count)
    total.inc(sum(values))
DEFAULT_ADDR = "127.0.0.1"
STALE_AFTER = 60.0  # seconds without a turn of the main loop before /healthz fails


@dataclass(frozen=True)
class Verdict:
    """The answer of one probe."""

    ok: bool
    reason: str = ""

    def body(self) -> bytes:
        """Return the one-line JSON the endpoint answers with."""
        data: dict[str, Any] = {"ok": self.ok}
        if self.reason:
            data["reason"] = self.reason
        return (json.dumps(data) + "\n").encode()


def _values(registry: Any, name: str) -> list[float]:
    found = []
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found.append(sample.value)
    return found


def liveness(registry: Any, prefix: str, started: float, stale: float = STALE_AFTER) -> Verdict:
    """Return whether the main loop (every worker's, if several) turned within `stale` s."""
    turns = _values(registry, f"{prefix}_last_turn_timestamp_seconds")
    now = time.time()
    if not turns:
        if now - started < stale:
            return Verdict(True, "starting")
        return Verdict(False, f"the main loop has not started within {stale:.0f}s")
    idle = now - min(turns)
    if idle > stale:
        return Verdict(False, f"the main loop has not turned for {idle:.0f}s")
    return Verdict(True)


def readiness(registry: Any, prefix: str) -> Verdict:
    """Return whether database and broker answered the main loop when it last tried."""
    for what in ("database", "broker"):
        values = _values(registry, f"{prefix}_{what}_up")
        if not values:
            return Verdict(False, f"{what} not reached yet")
        if min(values) < 1:
            return Verdict(False, f"{what} unreachable")
    return Verdict(True)


class Server:
    """The HTTP endpoints of one process, on a daemon thread."""

    def __init__(self, addr: str, port: int, registry: Any, prefix: str,
                 before_read: Callable[[], None] | None = None) -> None:
        self.registry = registry
        self.prefix = prefix
        self.before_read = before_read or (lambda: None)
        self.started = time.time()
        self._prom = require()
        try:
            self._http = httpd.HttpServer(addr, port, lambda _method, path: self.answer(path),
                                          "cqrs-metrics")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}; "
                "pick a free --metrics-port"
            ) from exc
        self.port = self._http.port
        logger.info("serving /metrics, /healthz and /readyz on http://%s:%s", addr, self.port)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """Return status, content type and body for a GET of `path`."""
        self.before_read()
        if path == "/metrics":
            exposition = self._prom.exposition
            return 200, exposition.CONTENT_TYPE_LATEST, exposition.generate_latest(self.registry)
        if path in ("/healthz", "/readyz"):
            if path == "/healthz":
                verdict = liveness(self.registry, self.prefix, self.started)
            else:
                verdict = readiness(self.registry, self.prefix)
            return (200 if verdict.ok else 503), "application/json", verdict.body()
        return 404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._http.close()
