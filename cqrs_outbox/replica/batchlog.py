"""Keep the consumer's log readable under bursts: a few lines per kind, then a summary.

A batch writes django-cqrs's line for the first few lost, stale, duplicate, retried
and dead-lettered events of each kind, and one summary line for the rest. An outage
writes its first failure in full and then one line a minute with a count, instead of a
line per attempt.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from cqrs_outbox.replica import revlog

LINES_PER_KIND = 5  # lines of each kind a batch writes before it only counts them
# Each dead letter is named, up to this many per batch; the queue keeps every reason.
DEAD_LINES_PER_BATCH = 25
REPEAT_INTERVAL = 60.0  # seconds between the summaries of a repeating failure

_KIND_WORDS = {
    revlog.LOST: "with lost revisions",
    revlog.STALE: "older than the row",
    revlog.DUPLICATE: "duplicates",
    revlog.SYNC_DOWNGRADE: "SYNCs older than the row",
    revlog.TOMBSTONED: "for deleted rows",
    revlog.CLOCK: "older than the row by the master's clock",
    "dead": "dead-lettered",
    "retry": "to retry",
}


class BatchReport:
    """What one batch did, with its per-event lines capped per kind."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.counts: Counter = Counter()
        self.hidden = 0
        self.level = logging.DEBUG

    def event(self, kind: str, lines: list[tuple[int, str]]) -> None:
        """Count one event of `kind` and write its lines, if the kind's quota allows."""
        self.counts[kind] += 1
        for level, text in lines:
            self.level = max(self.level, level)
            quota = DEAD_LINES_PER_BATCH if kind == "dead" else LINES_PER_KIND
            if self.counts[kind] <= quota:
                self.logger.log(level, "%s", text)
            else:
                self.hidden += 1

    def finish(self, size: int, applied: int, elapsed_ms: float) -> None:
        """Write the batch's summary line: at DEBUG when all went well, else at the worst level."""
        notable = {k: n for k, n in self.counts.items() if k in _KIND_WORDS and n}
        parts = [f"{applied} applied"] + [f"{n} {_KIND_WORDS[k]}" for k, n in notable.items()]
        hidden = f"; {self.hidden} similar lines not shown" if self.hidden else ""
        level = self.level if notable else logging.DEBUG
        self.logger.log(level, "Batch of %s acknowledged in %.1f ms: %s%s", size, elapsed_ms,
                        ", ".join(parts), hidden)


class Repeats:
    """Log a repeating failure once in full, then a count once per interval."""

    def __init__(self, logger: logging.Logger, interval: float = REPEAT_INTERVAL) -> None:
        self.logger = logger
        self.interval = interval
        self.count = 0  # failures since the last line written
        self.total = 0  # failures since the last success
        self.since = 0.0
        self.last_text = ""

    def failed(self, text: str, *args: Any) -> None:
        """Record one failure; write it when it is the first, or a summary when one is due."""
        now = time.monotonic()
        self.count += 1
        self.total += 1
        self.last_text = text % args if args else text
        if self.total == 1:
            self.since = now
            self.logger.warning("%s", self.last_text)
        elif now - self.since >= self.interval:
            self.logger.warning("Still failing: %s attempts in the last %.0fs; last: %s",
                                self.count - 1, now - self.since, self.last_text)
            self.since, self.count = now, 0

    def recovered(self, what: str) -> None:
        """Write that the failures ended, if there were any."""
        if self.total:
            self.logger.warning("%s again after %s failed attempts", what, self.total)
        self.count = self.total = 0
