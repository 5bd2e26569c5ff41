"""Keep the consumer's log readable under bursts: a few lines per kind, then a summary.

A batch writes django-cqrs's line for the first few lost, stale, duplicate, retried
and dead-lettered events of each kind, and one summary line for the rest. (An outage is
logged by `cqrs_outbox.core.outages`, as the relay logs its own.)
"""

from __future__ import annotations

import logging
from collections import Counter

from cqrs_outbox.replica import revlog

LINES_PER_KIND = 5  # lines of each kind a batch writes before it only counts them
# Each dead letter is named, up to this many per batch; the queue keeps every reason.
DEAD_LINES_PER_BATCH = 25

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


