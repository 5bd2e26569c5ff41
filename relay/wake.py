"""Sleeping until there is work: PostgreSQL notifications, polling, and stop requests.

`Alarm` is what a signal handler (or another thread) rings to stop the relay: it wakes
every sleep at once. `Listener` subscribes a PostgreSQL connection to the outbox's
notification channel; on other databases, or when notifications cannot be read, the
relay simply polls.
"""

from __future__ import annotations

import logging
import os
import select
from typing import Any

from relay import contract
from relay.db import POSTGRESQL, Database

logger = logging.getLogger(__name__)


class Alarm:
    """A stop flag that also wakes whoever sleeps on it; safe to ring from a signal handler."""

    def __init__(self) -> None:
        self.rung = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def ring(self) -> None:
        """Ask the relay to stop; wake it if it sleeps."""
        self.rung = True
        try:
            os.write(self._write, b"!")
        except OSError:  # the pipe is full: a wake-up is pending already
            pass

    def fileno(self) -> int:
        return self._read

    def sleep(self, seconds: float, *others: Any) -> list[Any]:
        """Sleep up to `seconds`, less if rung or if one of `others` becomes readable."""
        if self.rung:
            return []
        ready, _, _ = select.select([self, *others], [], [], max(0.0, seconds))
        return [item for item in ready if item is not self]

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


class Listener:
    """Wake on `NOTIFY cqrs_outbox` on a PostgreSQL connection in autocommit mode."""

    def __init__(self, db: Database) -> None:
        self.db = db
        raw = db.raw
        self._raw = raw if db.vendor == POSTGRESQL and hasattr(raw, "poll") else None
        if self._raw is not None:
            db.rowcount(f"LISTEN {contract.NOTIFY_CHANNEL}")

    @property
    def active(self) -> bool:
        """Return whether notifications can wake us (otherwise we only poll)."""
        return self._raw is not None

    def pending(self) -> bool:
        """Read what the connection has received; return whether a notification came."""
        if self._raw is None:
            return False
        self._raw.poll()
        if not self._raw.notifies:
            return False
        self._raw.notifies.clear()
        return True

    def wait(self, alarm: Alarm, seconds: float) -> bool:
        """Sleep until a notification, the alarm, or `seconds`; return if notified."""
        if self.pending():
            return True
        if self._raw is None:
            alarm.sleep(seconds)
            return False
        alarm.sleep(seconds, self._raw)
        return self.pending()

    def stop(self) -> None:
        """Unsubscribe, so a connection handed back to its owner carries no LISTEN."""
        if self._raw is not None:
            self.db.rowcount(f"UNLISTEN {contract.NOTIFY_CHANNEL}")
            self._raw = None
