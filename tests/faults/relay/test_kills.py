"""Relay processes SIGKILLed mid-drain, and several relays sharing one outbox."""

import random
import time

import pytest

from cqrs_outbox.core import contract
from tests.integration.relay import support
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.broker,
    pytest.mark.slow,
]

TTL = 2.0  # seconds: small leases, so a killed relay's partitions free up quickly
BATCH = 500
KILLS = 3


def _keys(rows, revisions):
    return [("author", pk, rev) for rev in range(revisions) for pk in range(rows)]


def _in_order(received, revisions):
    """Assert each row's revisions first arrived in order (repeats may follow)."""
    for key, seen in support.revisions_by_row(received).items():
        assert support.first_seen(seen) == list(range(revisions)), key


def test_sigkill_mid_drain__every_event_arrives_repeats_only_from_batches_in_flight(
    collector, relays, record_property
):
    ids = support.write_events(_keys(2000, 5))
    options = ("--batch-size", str(BATCH), "--lease-ttl", str(TTL), "--poll-interval", "0.2")
    rng = random.Random()
    for kill in range(KILLS):
        relay = relays(f"doomed-{kill}", *options)
        before = collector.pump(0)
        wait_until(lambda b=before: collector.pump(0.05) > b, what="publishing resumed")
        time.sleep(rng.uniform(0.0, 0.4))
        relay.kill()
    assert len(collector.ids()) < len(ids), "the kills came too late to hit the drain"
    survivor = relays("survivor", *options)
    collector.collect(ids, timeout=120)
    received = collector.settle(quiet=1.0)
    wait_until(lambda: support.outbox_counts() == {"published": len(ids)})
    duplicates = collector.duplicates()
    record_property("duplicates", duplicates)
    print(f"\n{len(ids)} events, {KILLS} kills, {duplicates} delivered twice")
    # At a kill, at most two batches are unmarked: one confirmed, one awaiting confirms.
    assert duplicates <= KILLS * 2 * BATCH
    _in_order(received, 5)
    assert survivor.terminate() == 0


def test_three_relays__share_the_partitions_keep_order_and_take_over_a_killed_one(
    collector, relays
):
    options = ("--lease-ttl", str(TTL), "--poll-interval", "0.2", "--batch-size", "100")
    trio = [relays(f"relay-{n}", *options) for n in range(3)]
    owners = wait_until(_three_way_split, what="three relays sharing partitions")
    ids = support.write_events(_keys(300, 5))
    received = collector.collect(ids)
    assert collector.duplicates() == 0
    for key, seen in support.revisions_by_row(received).items():
        assert seen == list(range(5)), key

    victim = trio[0]
    orphaned = owners[victim.name]
    killed_at = time.monotonic()
    victim.kill()
    survivors = wait_until(
        lambda: _taken_over(victim.name, orphaned), timeout=4 * TTL, what="take-over"
    )
    print(f"\npartitions {sorted(orphaned)[:5]}... moved after "
          f"{time.monotonic() - killed_at:.1f}s (lease {TTL}s)")
    assert set().union(*survivors.values()) == set(range(contract.PARTITIONS))
    later = support.write_events(_keys(300, 1))
    collector.collect(later)
    for relay in trio[1:]:
        assert relay.terminate() == 0


def _three_way_split():
    held = support.leases_by_owner()
    parts = [p for owned in held.values() for p in owned]
    if len(held) == 3 and len(parts) == contract.PARTITIONS and max(map(len, held.values())) <= 22:
        return held
    return None


def _taken_over(dead, orphaned):
    held = support.leases_by_owner()
    if dead in held or not orphaned <= set().union(*held.values(), set()):
        return None
    return held
