"""The drain loop: read pending events of our partitions, publish, confirm, mark.

The partition leases make the events this relay's to publish; reading them takes no
lock. One thread, pipelined: up to `Config.in_flight` batches (four) are on the broker
at once. When the oldest is confirmed the relay sends the next one (read earlier), marks
the confirmed one published and reads another, while the broker persists the batches
still in flight: the broker never waits for the relay. Batches are marked in the order
they were sent, each only after the broker confirmed it; anything unconfirmed when a
process dies or a connection breaks is published again later, so delivery is
at-least-once and per-row order holds.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cqrs_outbox import store
from cqrs_outbox.core import backoff, outages
from cqrs_outbox.core.errors import (
    BrokerUnavailable,
    DatabaseUnavailable,
    MessageRejected,
    RecoverableError,
)
from cqrs_outbox.store import dbapi
from cqrs_outbox.store.dbapi import Database
from relay import metrics, nacks
from relay.leases import Leases
from relay.publisher import Message, Outcome, Publisher
from relay.wake import Alarm, Listener

logger = logging.getLogger(__name__)

CONFIRM_SLICE = 0.5  # seconds between checks while waiting for the broker's confirms
CONFIRM_TIMEOUT = 30.0  # seconds without confirms before the connection counts as broken
STOP_GRACE = 5.0  # seconds a stopping relay still waits for the batches in flight
BACKOFF_FIRST = 0.1  # seconds before the first retry after an outage
BACKOFF_MAX = 5.0  # seconds, the longest pause between retries
REFUSAL_BACKOFF = 1.0  # seconds before re-publishing a refused event, doubled per attempt
REFUSAL_BACKOFF_MAX = 60.0  # seconds
PURGE_INTERVAL = 60.0  # seconds between purges of old published events, unless behind
PURGE_ROUNDS = 10  # purge statements per turn, so a purge never stalls the drain long
# Without notifications (MySQL, MariaDB, SQLite, --no-listen) the relay polls: first this
# soon after its last work, then twice as long after each empty poll, up to the poll
# interval. A burst's next event is seen within tens of milliseconds; one that comes
# after a quiet spell waits up to the poll interval (1 s by default, 0.5 s on average).
POLL_FIRST = 0.05  # seconds


@dataclass(frozen=True)
class Config:
    """How a relay drains. These defaults are the only ones: `python -m relay` uses them,
    and `cqrs_outbox.conf` reads them as the defaults of the `CQRS['relay']` settings."""

    batch_size: int = 500  # events per batch
    poll_interval: float = 1.0  # seconds between polls when no notification comes
    lease_ttl: float = 30.0  # seconds a partition lease lasts unless renewed
    max_attempts: int = 10  # broker refusals (not nacks) before an event is marked failed
    retention: float = 7 * 86400  # seconds published events are kept
    purge_batch_size: int = 5000  # events per purge statement
    listen: bool = True  # wake on PostgreSQL notifications
    in_flight: int = 4  # batches published and not yet confirmed, at most
    owner: str = ""  # this relay's name in the lease table; generated when empty


@dataclass
class Stats:
    """What a relay did since it started."""

    published: int = 0
    returned: int = 0
    refused: int = 0
    nacked: int = 0
    failed: int = 0
    purged: int = 0
    batches: int = 0


@dataclass
class Batch:
    """Pending events read for publishing, in id order; each partition's are a prefix of
    its pending events."""

    rows: list[store.Pending] = field(default_factory=list)
    claimed_at: float = field(default_factory=time.monotonic)

    @classmethod
    def ready(cls, rows: Sequence[store.Pending], now: datetime.datetime) -> Batch:
        """Keep rows up to the first one of their partition that must still wait."""
        waiting: set[int] = set()
        kept = []
        for row in sorted(rows, key=lambda r: r.id):
            if row.partition in waiting or row.available_at > now:
                waiting.add(row.partition)
            else:
                kept.append(row)
        return cls(kept)

    def cursors(self) -> dict[int, int]:
        """Return, per partition, the highest event id in the batch."""
        return {row.partition: row.id for row in self.rows}

    def messages(self) -> list[Message]:
        return [Message(row.id, row.routing_key, row.payload, row.headers()) for row in self.rows]


def default_owner() -> str:
    """Return a name for this relay process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Health:
    """Track outages of the broker and the database, each logged once, not each retry."""

    def __init__(self) -> None:
        self._outages: dict[str, outages.Outage] = {}

    def down(self, what: str, error: Exception) -> float:
        """Record a failed try; return how long to back off."""
        outage = self._outages.setdefault(what, outages.Outage(logger, what))
        tries = outage.failed(f"retrying with back-off: {error}")
        return backoff.jittered(tries, BACKOFF_FIRST, BACKOFF_MAX)

    def up(self) -> None:
        """Record that a turn of the loop went through."""
        for outage in self._outages.values():
            outage.recovered()


class Relay:
    """Drain the outbox to the broker until stopped."""

    def __init__(
        self,
        connect: Callable[[], Database],
        publisher: Publisher,
        config: Config | None = None,
        *,
        alarm: Alarm | None = None,
        observer: metrics.Observer | None = None,
        before_turn: Callable[[], int] | None = None,
    ) -> None:
        self.config = config or Config()
        # Called at the start of every turn; returns how much work it did (a count), so a
        # turn that found some does not sleep. The Django front ends pass the step that
        # turns captured changes into events (cqrs_outbox.master.outside).
        self._before_turn = before_turn
        self.observer = observer or metrics.Observer()
        self.publisher = publisher
        self.owner = self.config.owner or default_owner()
        self.leases = Leases(self.owner, self.config.lease_ttl)
        self.stats = Stats()
        self.alarm = alarm or Alarm()
        self._own_alarm = alarm is None
        self._connect = connect
        self._db: Database | None = None
        self._listener: Listener | None = None
        self._health = Health()
        self._nacks = nacks.Streak()
        self._one_at_a_time = 0  # events still to publish singly, to find a rejected one
        self._rotation = 0
        self._idle_polls = 0  # empty polls since the last work, for the back-off
        self._last_purge = -PURGE_INTERVAL
        self._unroutable: set[str] = set()
        # Returned events found by `start`, per routing key: keys without a bound queue.
        self.returned_at_start: tuple[tuple[str, int], ...] = ()
        self._stopping_since: float | None = None  # when a wait first saw the stop

    # -- public ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect once and check the tables; raise at once instead of retrying.

        Front ends call this to fail fast on a wrong database URL or missing tables.
        An unreachable broker is only logged: the run loop keeps trying it.
        """
        with dbapi.translated():
            self.returned_at_start = store.returned_by_key(self._ensure_db())
        for key, count in self.returned_at_start:
            self._unroutable.add(key)  # said here; not again at the next return
            logger.warning(
                "routing key %s: %s event(s) returned by the broker as unroutable wait for "
                "a replay; no queue was bound to the key when they were published",
                key, count,
            )
        try:
            self.publisher.connect()
        except BrokerUnavailable as exc:
            self._health.down("broker", exc)

    def stop(self) -> None:
        """Ask the relay to stop after the batch in flight; safe from signal handlers."""
        self.alarm.ring()

    def run(self, *, once: bool = False, seconds: float | None = None) -> Stats:
        """Drain until stopped (or, with `once`, until nothing is pending; with
        `seconds`, for at most that long). Release the leases on the way out."""
        deadline = None if seconds is None else time.monotonic() + seconds
        logger.info("relay %s running (batch %s)", self.owner, self.config.batch_size)
        try:
            while not self._leaving(deadline):
                try:
                    with dbapi.translated():
                        if not self._turn(once, deadline):
                            break
                except RecoverableError as exc:
                    self._outage(exc)
        finally:
            self._shutdown()
        return self.stats

    # -- the loop ----------------------------------------------------------------------

    def _turn(self, once: bool, deadline: float | None) -> bool:
        db = self._ensure_db()
        if not self.publisher.is_open:
            self.publisher.connect()
        if self.leases.rebalance_due():
            self.leases.tick(db)
        moved = self._before_turn() if self._before_turn is not None else 0
        moved += self._drain(db, deadline)
        self._reopen_after_nacks()
        self._health.up()
        self.observer.turned(db, len(self.leases.held))
        self._purge(db)
        if moved or self._one_at_a_time:
            self._idle_polls = 0
            return True
        if once:
            return False
        self._sleep(deadline)
        return True

    def _drain(self, db: Database, deadline: float | None) -> int:
        """Publish batches until none is left (or it is time to rebalance or stop)."""
        moved = 0
        flying: deque[Batch] = deque()  # sent and not yet confirmed, oldest first
        confirmed: tuple[Batch, Outcome] | None = None  # to mark after the next send
        batch = self._read_batch(db, {})
        try:
            while batch.rows or flying:
                if batch.rows and len(flying) < self._depth():
                    batch = self._guard(db, batch)
                    if batch.rows:
                        flying.append(batch)
                        self.publisher.send(batch.messages())
                    # Mark the batch confirmed last while the broker persists this one.
                    done, confirmed = confirmed, None
                    moved += self._settle(db, *done) if done else 0
                    batch = self._next(db, flying, deadline) if batch.rows else Batch()
                    continue
                done, confirmed = confirmed, None
                moved += self._settle(db, *done) if done else 0
                outcome = self._await(db)
                confirmed = (flying.popleft(), outcome)
                if outcome.refused or outcome.nacked:  # stop reading; one in flight is settled
                    batch = Batch()
        except MessageRejected as exc:
            moved += self._rejected(db, Batch([r for b in flying for r in b.rows]), exc)
        finally:
            if confirmed:
                moved += self._settle(db, *confirmed)
        return moved

    def _depth(self) -> int:
        """Return how many batches may be in flight: one while finding a rejected event."""
        return 1 if self._one_at_a_time else max(1, self.config.in_flight)

    def _next(self, db: Database, flying: deque[Batch], deadline: float | None) -> Batch:
        if self._one_at_a_time or self._leaving(deadline) or self.leases.rebalance_due():
            return Batch()
        after: dict[int, int] = {}
        for sent in flying:  # read past every row still in flight, not only the last
            after.update(sent.cursors())
        return self._read_batch(db, after)

    def _read_batch(self, db: Database, after: dict[int, int]) -> Batch:
        held = sorted(self.leases.held)
        if not held:
            return Batch()
        start = self._rotation % len(held)  # rotate, so no partition always comes last
        self._rotation += 1
        order = held[start:] + held[:start]
        limit = 1 if self._one_at_a_time else self.config.batch_size
        rows = store.read_pending(db, [(p, after.get(p, 0)) for p in order], limit)
        return Batch.ready(rows, self.leases.now())

    def _guard(self, db: Database, batch: Batch) -> Batch:
        """Renew the leases if due; keep only rows of partitions surely still ours."""
        if self.leases.due() or not self.leases.safe():
            self.leases.tick(db, rebalance=False)
        held = self.leases.held
        return Batch([row for row in batch.rows if row.partition in held], batch.claimed_at)

    def _await(self, db: Database) -> Outcome:
        started = time.monotonic()
        while True:
            outcome = self.publisher.wait(CONFIRM_SLICE)
            if outcome is not None:
                return outcome
            if self.leases.due():  # a slow broker must not cost us our leases
                self.leases.tick(db, rebalance=False)
            limit = CONFIRM_TIMEOUT
            if self.alarm.rung:  # one grace in all, however many batches are in flight
                if self._stopping_since is None:
                    self._stopping_since = started
                started, limit = self._stopping_since, STOP_GRACE
            if time.monotonic() - started >= limit:
                raise BrokerUnavailable(f"no confirmation from the broker within {limit:.0f}s")

    # -- settling ----------------------------------------------------------------------

    def _settle(self, db: Database, batch: Batch, outcome: Outcome) -> int:
        """Mark a confirmed batch: published, returned, or refused per event."""
        now = self.leases.now()
        skip = outcome.returned.keys() | outcome.refused.keys() | outcome.nacked.keys()
        store.mark_published(db, [r.id for r in batch.rows if r.id not in skip], now)
        self._nacks.record([r.id for r in batch.rows], outcome.nacked.keys())
        if outcome.nacked:
            self._nacked(db, [r for r in batch.rows if r.id in outcome.nacked], now)
        self.stats.published += len(batch.rows) - len(skip)
        self.stats.batches += 1
        self.observer.settled(batch.rows, skip, batch.claimed_at, now)
        for row in batch.rows:
            if row.id in outcome.returned:
                self._returned(db, row, outcome.returned[row.id], now)
            elif row.id in outcome.refused:
                self._refused(db, row, outcome.refused[row.id], now)
        if self._one_at_a_time:
            self._one_at_a_time = max(0, self._one_at_a_time - len(batch.rows))
        return len(batch.rows)

    def _returned(
        self, db: Database, row: store.Pending, reason: str, now: datetime.datetime
    ) -> None:
        store.mark_returned(db, row.id, f"returned by the broker: {reason}", now)
        self.stats.returned += 1
        self.observer.returned(row)
        if row.routing_key not in self._unroutable:  # once per key: it may be every event
            self._unroutable.add(row.routing_key)
            logger.warning(
                "event %s returned by the broker (%s): no queue is bound to routing key %s",
                row.id, reason, row.routing_key,
            )

    def _nacked(self, db: Database, rows: list[store.Pending], now: datetime.datetime) -> None:
        """Leave nacked events pending, counting no attempt; while the broker confirms
        other events, these wait a little so the rest flows."""
        delay = 0.0 if self._nacks.refusing else self._nacks.retry_delay()
        retry_at = now + datetime.timedelta(seconds=delay)
        reason = "nacked by the broker; published again on a fresh connection"
        store.mark_nacked(db, [row.id for row in rows], reason, retry_at)
        self.stats.nacked += len(rows)
        self.observer.nacked(rows)

    def _reopen_after_nacks(self) -> None:
        """After nacks, publish on a fresh connection; nothing but nacks is an outage."""
        if not self._nacks.reopen:
            return
        self._nacks.reopen = False
        self.publisher.close()  # the next batch goes out on a new connection and probes it
        if self._nacks.refusing:
            raise BrokerUnavailable(self._nacks.describe())

    def _refused(
        self, db: Database, row: store.Pending, reason: str, now: datetime.datetime
    ) -> None:
        delay = backoff.exponential(row.attempts, REFUSAL_BACKOFF, REFUSAL_BACKOFF_MAX)
        retry_at = now + datetime.timedelta(seconds=delay)
        failed = store.mark_refused(
            db, row.id, f"refused by the broker: {reason}", retry_at, self.config.max_attempts
        )
        self.stats.refused += 1
        self.observer.refused(row, failed)
        if failed:
            self.stats.failed += 1
            logger.error(
                "event %s (routing key %s) failed after %s refusals: %s",
                row.id, row.routing_key, row.attempts + 1, reason,
            )
        else:
            logger.warning("event %s refused by the broker (%s); retrying in %.0fs",
                           row.id, reason, delay)

    def _rejected(self, db: Database, batch: Batch, error: MessageRejected) -> int:
        """The broker closed the channel over a message of `batch`: find which one."""
        if len(batch.rows) == 1:
            self._refused(db, batch.rows[0], str(error), self.leases.now())
            self._one_at_a_time = max(0, self._one_at_a_time - 1)
            return 1
        logger.warning(
            "%s; publishing the next %s events one at a time to find it", error, len(batch.rows)
        )
        self._one_at_a_time = len(batch.rows)
        return 0

    # -- idle work ---------------------------------------------------------------------

    def _purge(self, db: Database) -> None:
        if time.monotonic() - self._last_purge < PURGE_INTERVAL or 0 not in self.leases.held:
            return  # one relay purges: the one holding partition 0
        before = self.leases.now() - datetime.timedelta(seconds=self.config.retention)
        purged, more = _purge_rounds(
            db, before, self.config.purge_batch_size, PURGE_ROUNDS, self.alarm
        )
        # Behind (events come faster than one purge a minute removes): go on next turn.
        self._last_purge = -PURGE_INTERVAL if more else time.monotonic()
        self.stats.purged += purged
        self.observer.purged(purged)
        if purged:
            logger.info("purged %s events published before %s", purged, before)

    def _sleep(self, deadline: float | None) -> None:
        seconds = self.config.poll_interval
        if self._listener is None:
            seconds = min(seconds, POLL_FIRST * 2**self._idle_polls)
            self._idle_polls = min(self._idle_polls + 1, 32)
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.wait(self.alarm, seconds)
        else:
            self.alarm.sleep(seconds)
        self.publisher.idle()

    # -- connections, outages and shutdown ---------------------------------------------

    def _ensure_db(self) -> Database:
        if self._db is None:
            db = self._connect()
            store.leases(db)  # fails now, clearly, if the tables are missing
            self._listener = Listener(db) if self.config.listen else None
            if self._listener is not None and not self._listener.active:
                self._listener = None
            self._db = db
        return self._db

    def _outage(self, error: RecoverableError) -> None:
        if isinstance(error, DatabaseUnavailable):
            self._drop_db()
            what = "database"
        else:
            self.publisher.close()
            what = "broker"
            if self._db is not None:  # connected, and not lost since: only the broker failed
                self.observer.up("database")
        self.observer.down(what)
        self.alarm.sleep(self._health.down(what, error))

    def _drop_db(self) -> None:
        db, self._db, self._listener = self._db, None, None
        self.leases.forget()
        if db is not None:
            db.close()

    def _leaving(self, deadline: float | None) -> bool:
        return self.alarm.rung or (deadline is not None and time.monotonic() >= deadline)

    def _shutdown(self) -> None:
        try:
            if self._db is not None:
                with dbapi.translated():
                    self.leases.release(self._db)
                    if self._listener is not None:
                        self._listener.stop()
        except RecoverableError as exc:
            logger.warning("could not release the leases (they expire by themselves): %s", exc)
        finally:
            self.publisher.close()
            self.observer.close()
            if self._own_alarm:
                self.alarm.close()
        logger.info(
            "relay %s stopped: %s published, %s returned, %s failed",
            self.owner, self.stats.published, self.stats.returned, self.stats.failed,
        )


def purge(db: Database, before: datetime.datetime, batch_size: int, rounds: int,
          alarm: Alarm | None = None) -> int:
    """Delete events published before `before`, oldest ids first, in at most `rounds`
    statements of `batch_size` rows each."""
    return _purge_rounds(db, before, batch_size, rounds, alarm)[0]


def _purge_rounds(db: Database, before: datetime.datetime, batch_size: int, rounds: int,
                  alarm: Alarm | None) -> tuple[int, bool]:
    """Purge as `purge` does; also return whether the rounds ran out with more to do."""
    total, after = 0, 0
    for _ in range(rounds):
        deleted, resume = store.purge_published(db, before, batch_size, after)
        total += deleted
        if resume is None:
            return total, False
        if alarm is not None and alarm.rung:
            break
        after = resume
    return total, True
