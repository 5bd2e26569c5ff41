"""Partition leases: fair shares, take-over after expiry, release, lost leases."""

from cqrs_outbox.core import contract
from relay.leases import Leases


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
