"""Keep track of the broker's nacks: when to reopen, when it is an outage, what to log.

RabbitMQ nacks a publish it cannot take now: a quorum queue without a leader, a full
queue that rejects publishes, or a channel opened on a surviving node while the queue
elected its new leader, which goes on nacking everything after the election is over
while a fresh connection to the same node is confirmed at once. So a nack is taken for
a fault of the channel until a fresh one proves otherwise: the relay reopens the
connection before it publishes again, and the next batch probes it. Nacked events stay
pending and count no attempt toward `max_attempts`: what the cluster does for a while
must never fail an event the way a refusal of the message itself does.

While every event sent since the nacks began was nacked, the broker counts as
unavailable: the relay backs off as in any outage and its readiness probe fails. One
line says when nacks begin next to confirms (the outage line says it otherwise), one
when every nacked event was published since, with the counts; an event nacked for good
(a queue that stays full) keeps the streak open, and the relay quiet about it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from cqrs_outbox.core import backoff

logger = logging.getLogger(__name__)

RETRY_FIRST = 0.5  # seconds before nacked events next to confirmed ones go out again
RETRY_MAX = 5.0  # seconds, doubled per batch with nacks up to this


class Streak:
    """The nacks since the broker last had none waiting to go out again."""

    def __init__(self) -> None:
        self.waiting: set[int] = set()  # ids nacked and not settled since
        self.since: float | None = None  # monotonic time of the first nack
        self.nacked = 0  # events nacked since then
        self.batches = 0  # batches with nacks since then
        self.confirmed = 0  # events confirmed since then
        self.reopen = False  # a batch was nacked: publish on a fresh connection next

    @property
    def refusing(self) -> bool:
        """Return whether every event sent since the nacks began was nacked."""
        return self.since is not None and not self.confirmed

    def record(self, sent: Collection[int], nacked: Collection[int]) -> None:
        """Record the broker's verdict on a batch: the ids `sent`, `nacked` of them nacked."""
        self.waiting.difference_update(sent)
        self.waiting.update(nacked)
        if self.since is not None:
            self.confirmed += len(sent) - len(nacked)
        if not nacked:
            if self.since is not None and not self.waiting:
                self._end()
            return
        self._begin(len(sent), len(nacked))

    def _begin(self, sent: int, nacked: int) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.confirmed = sent - nacked
            if nacked < sent:
                logger.warning(
                    "the broker nacked %s of %s events of a batch; publishing them again on a "
                    "fresh connection (a nack counts no attempt)", nacked, sent,
                )
        self.nacked += nacked
        self.batches += 1
        self.reopen = True

    def retry_delay(self) -> float:
        """Return the seconds nacked events wait while the broker confirms others."""
        return backoff.exponential(max(0, self.batches - 1), RETRY_FIRST, RETRY_MAX)

    def describe(self) -> str:
        """Return what the streak is, for the outage line."""
        return (f"the broker nacked every event sent since {self._elapsed():.1f}s ago "
                f"({self.nacked} in {self.batches} batches); reopening the connection "
                "(a nack counts no attempt)")

    def _elapsed(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def _end(self) -> None:
        logger.warning(
            "the broker took every nacked event after %.1fs of nacks: %s nacks in %s batches",
            self._elapsed(), self.nacked, self.batches,
        )
        self.since, self.nacked, self.batches, self.confirmed = None, 0, 0, 0
