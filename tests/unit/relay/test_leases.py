"""Partition leases: fair shares, take-over after expiry, release, lost leases."""

import datetime

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract
from relay.leases import Leases

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
MICROSECOND = datetime.timedelta(microseconds=1)
TTL = datetime.timedelta(seconds=30)


def _expire(outbox, owner):
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_lease SET expires_at = '2000-01-01 00:00:00.000000' "
        "WHERE owner = %s",
        (owner,),
    )


def test_first_relay__takes_every_partition(outbox):
    a = Leases("a", ttl=30)
    a.tick(outbox.db)
    assert sorted(a.held) == list(range(contract.PARTITIONS))
    assert {owner for _, owner in outbox.leases()} == {"a"}


def test_second_relay__gets_half_once_the_first_gives_up_its_surplus(outbox):
    a, b = Leases("a", ttl=30), Leases("b", ttl=30)
    a.tick(outbox.db)
    b.tick(outbox.db)  # joins; nothing is free yet
    assert not b.held
    a.tick(outbox.db)  # sees two relays: keeps its share
    b.tick(outbox.db)  # takes what a gave up
    assert len(a.held) == len(b.held) == contract.PARTITIONS // 2
    assert not set(a.held) & set(b.held)


def test_three_relays__split_every_partition_without_overlap(outbox):
    relays = [Leases(name, ttl=30) for name in "abc"]
    for _ in range(3):
        for relay in relays:
            relay.tick(outbox.db)
    held = [set(r.held) for r in relays]
    assert set().union(*held) == set(range(contract.PARTITIONS))
    assert sum(len(h) for h in held) == contract.PARTITIONS
    assert max(len(h) for h in held) <= 22


def test_expired_leases__are_taken_over(outbox):
    a, b = Leases("a", ttl=30), Leases("b", ttl=30)
    a.tick(outbox.db)
    _expire(outbox, "a")  # a died: its leases and membership ran out
    b.tick(outbox.db)
    assert sorted(b.held) == list(range(contract.PARTITIONS))


def test_a_lease_taken_by_another__is_dropped_at_the_next_renewal(outbox):
    a = Leases("a", ttl=30)
    a.tick(outbox.db)
    outbox.db.rowcount("UPDATE cqrs_outbox_lease SET owner = 'b' WHERE partition = 7")
    a.tick(outbox.db, rebalance=False)
    assert 7 not in a.held
    assert len(a.held) == contract.PARTITIONS - 1


def test_release__frees_every_lease_at_once(outbox):
    a = Leases("a", ttl=30)
    a.tick(outbox.db)
    a.release(outbox.db)
    assert not a.held
    rows = outbox.db.fetchall("SELECT owner FROM cqrs_outbox_lease")
    assert {owner for (owner,) in rows} == {""}


def test_safe__only_right_after_a_renewal(outbox):
    a = Leases("a", ttl=30)
    assert not a.safe() and a.due()
    a.tick(outbox.db)
    assert a.safe() and not a.due()


# -- expiry at exactly now: a lease whose expires_at is now has expired -----------------


def _expires(outbox, owner, moment):
    outbox.db.rowcount(
        "UPDATE cqrs_outbox_lease SET expires_at = %s WHERE owner = %s",
        (outbox.db.timestamp(moment), owner),
    )


@pytest.mark.parametrize("expiry, free", [(NOW, True), (NOW + MICROSECOND, False)],
                         ids=["expiring-now", "expiring-a-microsecond-later"])
def test_lease_row__free_exactly_at_its_expiry_and_held_a_microsecond_before(
        outbox, expiry, free):
    """A lease expires at its expires_at, inclusive: at that very moment another relay may
    take it, and the lease table's rows read as free; one microsecond before, it is still
    its owner's. The UPDATE of take_lease and LeaseRow.free, which picks the partitions a
    relay tries and counts the live relays, apply the same rule."""
    store.ensure_partitions(outbox.db)
    assert store.take_lease(outbox.db, 3, "a", "t1", NOW - MICROSECOND, expiry) is True
    assert store.take_lease(outbox.db, -1, "a", "", NOW - MICROSECOND, expiry) is True
    rows = {row.partition: row for row in store.leases(outbox.db)}
    assert rows[3].expires_at == rows[-1].expires_at == expiry
    assert rows[3].free(NOW) is free and rows[-1].free(NOW) is free
    assert store.take_lease(outbox.db, 3, "b", "t2", NOW, NOW + TTL) is free
    assert dict(outbox.leases())[3] == ("b" if free else "a")


@pytest.mark.parametrize("expiry, taken", [(NOW, True), (NOW + MICROSECOND, False)],
                         ids=["expiring-now", "expiring-a-microsecond-later"])
def test_relay_whose_leases_expire_exactly_now__is_gone_for_the_next_relay_to_tick(
        outbox, monkeypatch, expiry, taken):
    """Relay a's membership and partitions expiring exactly at the database's now: relay
    b, ticking at that moment, counts itself alone and takes every partition. Expiring a
    microsecond later: a still counts and holds them all, and b gets none yet."""
    monkeypatch.setattr(store, "clock", lambda db: NOW)
    monkeypatch.setattr(store, "utcnow", lambda: NOW)
    a, b = Leases("a", ttl=30), Leases("b", ttl=30)
    a.tick(outbox.db)
    assert len(a.held) == contract.PARTITIONS
    _expires(outbox, "a", expiry)
    b.tick(outbox.db)
    owner = "b" if taken else "a"
    assert {o for _, o in outbox.leases()} == {owner}
    assert sorted(b.held) == (list(range(contract.PARTITIONS)) if taken else [])
