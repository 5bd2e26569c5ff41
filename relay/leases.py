"""Partition leases: which relay publishes which partitions, and for how long.

Each relay keeps a membership row alive and holds leases on a fair share of the
partitions (the partition count divided by the live relays, rounded up). It renews
them well before they expire, gives up what exceeds its share so that newcomers get
theirs, and takes free or expired partitions up to its share. Every change is a
compare-and-set UPDATE, so two relays never both win a partition, and nothing holds a
session lock: it works behind PgBouncer in transaction mode.

Times are the database's clock (PostgreSQL, or MySQL's UTC_TIMESTAMP), so relays on
hosts with skewed clocks still agree on expiry.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
import time
import uuid

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.store.dbapi import Database

logger = logging.getLogger(__name__)

RENEW_FRACTION = 0.25  # of the TTL: renew (and rebalance) this often
SAFE_FRACTION = 0.75  # of the TTL: stop publishing if not renewed within this long
MEMBER_SLOTS = 1024  # membership rows live at partition numbers -1 .. -MEMBER_SLOTS


class Leases:
    """The leases one relay holds, kept in the lease table."""

    def __init__(self, owner: str, ttl: float) -> None:
        self.owner = owner
        self.ttl = ttl
        self.held: dict[int, str] = {}  # partition -> token
        self._member_slot: int | None = None
        self._renewed_at: float | None = None  # monotonic time of the last renewal
        self._balanced_at: float | None = None  # monotonic time of the last rebalance
        self._offset = datetime.timedelta(0)  # database clock minus ours

    # -- timing ----------------------------------------------------------------------

    def due(self) -> bool:
        """Return whether it is time to renew the leases."""
        return _since(self._renewed_at) >= self.ttl * RENEW_FRACTION

    def rebalance_due(self) -> bool:
        """Return whether it is time to give up or take partitions."""
        return _since(self._balanced_at) >= self.ttl * RENEW_FRACTION

    def safe(self) -> bool:
        """Return whether the held leases are surely still ours for a batch to go out."""
        return _since(self._renewed_at) < self.ttl * SAFE_FRACTION

    def now(self) -> datetime.datetime:
        """Return the current time by the database's clock."""
        return store.utcnow() + self._offset

    # -- the work --------------------------------------------------------------------

    def tick(self, db: Database, *, rebalance: bool = True) -> None:
        """Renew what we hold; with `rebalance`, also give up or take partitions."""
        started = time.monotonic()
        self._offset = store.clock(db) - store.utcnow()
        now = self.now()
        expires = now + datetime.timedelta(seconds=self.ttl)
        self._heartbeat(db, now, expires)
        kept = store.renew_leases(db, self.owner, sorted(self.held), expires)
        for partition in sorted(set(self.held) - kept):
            logger.warning("lease of partition %s was lost to another relay", partition)
            del self.held[partition]
        if rebalance:
            self._rebalance(db, now, expires)
            self._balanced_at = started
        self._renewed_at = started

    def release(self, db: Database) -> None:
        """Give up every lease and the membership, so others take over at once."""
        store.release_leases(db, self.owner, sorted(self.held))
        if self._member_slot is not None:
            store.release_leases(db, self.owner, [self._member_slot])
        self.held.clear()
        self._member_slot = None
        self._renewed_at = self._balanced_at = None

    def forget(self) -> None:
        """Distrust what we hold (after losing the database) until `tick` confirms it."""
        self._renewed_at = self._balanced_at = None

    def _heartbeat(self, db: Database, now: datetime.datetime, expires: datetime.datetime) -> None:
        if self._member_slot is not None and store.renew_leases(
            db, self.owner, [self._member_slot], expires
        ):
            return
        store.ensure_partitions(db)
        start = random.randrange(MEMBER_SLOTS)
        for step in range(MEMBER_SLOTS):
            slot = -1 - (start + step) % MEMBER_SLOTS
            if store.take_lease(db, slot, self.owner, "", now, expires):
                self._member_slot = slot
                return

    def _rebalance(
        self, db: Database, now: datetime.datetime, expires: datetime.datetime
    ) -> None:
        rows = store.leases(db)
        members = sum(1 for r in rows if r.partition < 0 and not r.free(now)) or 1
        share = math.ceil(contract.PARTITIONS / members)
        if len(self.held) > share:
            self._give_up(db, len(self.held) - share)
        elif len(self.held) < share:
            free = [r.partition for r in rows if r.partition >= 0 and r.free(now)]
            random.shuffle(free)
            self._take(db, free, share - len(self.held), now, expires)

    def _give_up(self, db: Database, count: int) -> None:
        surplus = random.sample(sorted(self.held), count)
        store.release_leases(db, self.owner, surplus)
        for partition in surplus:
            del self.held[partition]
        logger.info("gave up %s partitions for other relays; holding %s", count, len(self.held))

    def _take(
        self,
        db: Database,
        candidates: list[int],
        count: int,
        now: datetime.datetime,
        expires: datetime.datetime,
    ) -> None:
        taken: list[int] = []
        for partition in candidates:
            if len(taken) >= count:
                break
            token = uuid.uuid4().hex
            if store.take_lease(db, partition, self.owner, token, now, expires):
                self.held[partition] = token
                taken.append(partition)
        if taken:
            logger.info("took %s partitions; holding %s", len(taken), len(self.held))


def _since(moment: float | None) -> float:
    return math.inf if moment is None else time.monotonic() - moment
