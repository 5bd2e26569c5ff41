"""Show how far a long command has got: a status line on a terminal, silence in a pipe.

The line has django-cqrs's words ("3 of 10 processed - 30% with rate 5.0 rps, to go
0:00:01 ..."), so whatever reads django-cqrs's progress reads ours.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import TextIO

REDRAW_INTERVAL = 0.2  # seconds between two redraws of the line


def wanted(stream: TextIO, forced: bool = False) -> bool:
    """Tell whether to report progress on `stream`: when asked, or when a person watches."""
    if forced:
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Count processed items and redraw one status line on `stream`.

    On a terminal the line is redrawn in place; elsewhere (`--progress` into a file or
    a pipe) each update is a line of its own, written at most once per batch.
    """

    def __init__(self, total: int | None, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._tty = wanted(self.stream)

    def advance(self, count: int, force: bool = False) -> None:
        """Add `count` processed items and redraw when it is time."""
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if force or not self._tty or now - self._drawn_at >= REDRAW_INTERVAL:
            self._drawn_at = now
            self._draw(now)

    def finish(self) -> None:
        """Draw the final state and end the line."""
        if not self.enabled:
            return
        if self._tty:
            self._draw(time.monotonic())
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        line = self.line(now - self.started)
        self.stream.write(f"\r{line}\x1b[K" if self._tty else line + "\n")
        self.stream.flush()

    def line(self, elapsed: float) -> str:
        """Return the status line for `elapsed` seconds into the run."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if not self.total:
            return f"{self.done} processed with rate {rate:.1f} rps ..."
        percent = int(100 * min(self.done / self.total, 1.0))
        left = max(self.total - self.done, 0)
        eta = str(datetime.timedelta(seconds=int(left / rate))) if rate else "n/a"
        return (f"{self.done} of {self.total} processed - {percent}% with rate {rate:.1f} rps, "
                f"to go {eta} ...")
