"""Log an outage once, not once a retry: the first failure in full, a count once a minute
while it lasts, and its end with how long it took and how many tries.

The relay keeps one `Outage` for the broker and one for the database; each replica
worker keeps one for its session (the broker and the database it applies to).
"""

from __future__ import annotations

import logging
import time

REPEAT_INTERVAL = 60.0  # seconds between the summaries of an outage that lasts


class Outage:
    """One thing that may be away for a while, and what the log has said of it."""

    def __init__(self, logger: logging.Logger, what: str,
                 interval: float = REPEAT_INTERVAL) -> None:
        self.logger = logger
        self.what = what
        self.interval = interval
        self.tries = 0  # failures since the last success
        self._since = 0.0  # when the outage began
        self._summed_at = 0.0  # when the last line about it was written
        self._unsaid = 0  # failures since that line
        self._last = ""

    @property
    def down(self) -> bool:
        """Tell whether the last try failed."""
        return self.tries > 0

    def failed(self, text: str) -> int:
        """Record one failed try, described by `text`; return how many failed before it."""
        now = time.monotonic()
        before, self._last = self.tries, text
        self.tries += 1
        if not before:
            self._since = self._summed_at = now
            self.logger.warning("%s unavailable, %s", self.what, text)
        else:
            self._unsaid += 1
            if now - self._summed_at >= self.interval:
                self.logger.warning("%s still unavailable: %d more tries in %.0fs; last: %s",
                                    self.what, self._unsaid, now - self._summed_at, text)
                self._summed_at, self._unsaid = now, 0
        return before

    def recovered(self) -> None:
        """Record a try that went through; say so if it ends an outage."""
        if self.tries:
            self.logger.warning("%s available again after %.1fs (%d tries)", self.what,
                                time.monotonic() - self._since, self.tries)
        self.tries = self._unsaid = 0
