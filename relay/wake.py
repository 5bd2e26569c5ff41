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

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.store.dbapi import Database

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
    """Wake on `NOTIFY cqrs_outbox` on a PostgreSQL connection in autocommit mode.

    Works on psycopg2 and psycopg 3 connections, bare or under Django's wrapper.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._inbox = _inbox(db.raw) if store.notifies(db) else None
        if self._inbox is not None:
            db.rowcount(f"LISTEN {contract.NOTIFY_CHANNEL}")

    @property
    def active(self) -> bool:
        """Return whether notifications can wake us (otherwise we only poll)."""
        return self._inbox is not None

    def pending(self) -> bool:
        """Read what the connection has received; return whether a notification came."""
        return self._inbox is not None and self._inbox.drain()

    def wait(self, alarm: Alarm, seconds: float) -> bool:
        """Sleep until a notification, the alarm, or `seconds`; return if notified."""
        if self.pending():
            return True
        if self._inbox is None:
            alarm.sleep(seconds)
            return False
        alarm.sleep(seconds, self._inbox)
        return self.pending()

    def stop(self) -> None:
        """Unsubscribe, so a connection handed back to its owner carries no LISTEN."""
        if self._inbox is not None:
            self.db.rowcount(f"UNLISTEN {contract.NOTIFY_CHANNEL}")
            self._inbox.close()
            self._inbox = None


class _Psycopg2Inbox:
    """Notifications of a psycopg2 connection: `poll()` reads, `notifies` holds them."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def drain(self) -> bool:
        self._raw.poll()
        if not self._raw.notifies:
            return False
        self._raw.notifies.clear()
        return True

    def close(self) -> None:
        pass


class _Psycopg3Inbox:
    """Notifications of a psycopg 3 connection.

    Those that arrive while a query runs reach the handler registered here; those that
    arrive while the connection idles are read from the socket without blocking, so a
    wait never holds the connection longer than the select on its descriptor.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._seen = False
        raw.add_notify_handler(self._notified)

    def _notified(self, notify: Any) -> None:
        self._seen = True

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def drain(self) -> bool:
        with self._raw.lock:
            pgconn = self._raw.pgconn
            pgconn.consume_input()  # raises OperationalError when the link is gone
            while pgconn.notifies() is not None:
                self._seen = True
        seen, self._seen = self._seen, False
        return seen

    def close(self) -> None:
        self._raw.remove_notify_handler(self._notified)


def _inbox(raw: Any) -> _Psycopg2Inbox | _Psycopg3Inbox | None:
    """Return the notification reader for a driver connection, None if it has none."""
    if hasattr(raw, "add_notify_handler") and hasattr(raw, "pgconn"):
        return _Psycopg3Inbox(raw)
    if hasattr(raw, "poll") and hasattr(raw, "notifies"):
        return _Psycopg2Inbox(raw)
    logger.info("no notifications on a %s connection: polling only", type(raw).__module__)
    return None
