"""A row deleted and created again, late copies of its old events, and repairs, applied
by the consumer's apply path to the real replica tables.

'author' is applied in bulk; 'filtered' through its own cqrs_create / cqrs_update,
where the manager makes the same decisions.
"""

import datetime
import logging

import pytest

from cqrs_outbox.core import wire
from cqrs_outbox.models import Tombstone
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)
FORGED = 2**31 - 1  # the highest revision these replicas' integer column holds


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def repair(cqrs_id, pk, revision, updated, **fields):
    body = ev.sync(cqrs_id, pk, revision, updated, **fields)
    body[wire.REPAIR_KEY] = True
    return body


def _row(cqrs_id, pk):
    if cqrs_id == "author":
        found = models.AuthorRef.objects.filter(pk=pk).first()
        return found and (found.name, found.cqrs_revision)
    found = models.FilteredRef.objects.filter(pk=pk).first()
    return found and (found.shout.lower(), found.cqrs_revision)


def _tombstone(cqrs_id, pk):
    found = Tombstone.objects.filter(cqrs_id=cqrs_id, instance_pk=str(pk)).first()
    return found and (found.revision, found.updated)


CQRS_IDS = pytest.mark.parametrize("cqrs_id", ["author", "filtered"])


@CQRS_IDS
def test_delete_then_create_pk_7_again__the_replica_holds_the_new_row(apply_batch, cqrs_id):
    old = [ev.save(cqrs_id, 7, 0, at(0), name="first"),
           ev.save(cqrs_id, 7, 1, at(1), name="first b")]
    assert apply_batch(*old, ev.delete(cqrs_id, 7, 2, at(2))) == ["applied"] * 3
    assert _row(cqrs_id, 7) is None

    assert apply_batch(ev.save(cqrs_id, 7, 0, at(3), name="second")) == ["applied"]
    assert _row(cqrs_id, 7) == ("second", 0)
    assert _tombstone(cqrs_id, 7) == (2, at(2))  # kept: the old life stays out


@CQRS_IDS
def test_redelivered_save_from_before_the_delete__still_refused_after_the_new_row(
        apply_batch, cqrs_id):
    before = ev.save(cqrs_id, 7, 1, at(1), name="old life")
    apply_batch(ev.save(cqrs_id, 7, 0, at(0), name="old life"), before,
                ev.delete(cqrs_id, 7, 2, at(2)))
    assert apply_batch(before) == ["ignored"]
    assert _row(cqrs_id, 7) is None

    apply_batch(ev.save(cqrs_id, 7, 0, at(3), name="new life"))
    assert apply_batch(before, ev.save(cqrs_id, 7, 0, at(0), name="old life")) == \
        ["ignored", "ignored"]
    assert _row(cqrs_id, 7) == ("new life", 0)


@CQRS_IDS
def test_redelivered_old_delete__never_removes_the_row_created_after_it(apply_batch, cqrs_id):
    delete = ev.delete(cqrs_id, 7, 5, at(2))
    apply_batch(ev.save(cqrs_id, 7, 4, at(1), name="old"), delete,
                ev.save(cqrs_id, 7, 0, at(3), name="new"), ev.save(cqrs_id, 7, 1, at(4),
                                                                     name="new b"))
    assert apply_batch(delete) == ["ignored"]
    assert _row(cqrs_id, 7) == ("new b", 1)


@CQRS_IDS
def test_old_delete_arriving_after_the_new_row__refused_and_keeps_the_old_life_out(
        apply_batch, cqrs_id):
    """The row was created again before its DELETE arrived (a retry held it back)."""
    apply_batch(ev.save(cqrs_id, 7, 3, at(1), name="old"))
    assert apply_batch(ev.save(cqrs_id, 7, 0, at(3), name="new")) == ["applied"]
    assert apply_batch(ev.delete(cqrs_id, 7, 4, at(2))) == ["ignored"]
    assert _row(cqrs_id, 7) == ("new", 0)
    assert _tombstone(cqrs_id, 7) == (4, at(2))
    assert apply_batch(ev.save(cqrs_id, 7, 3, at(1), name="old")) == ["ignored"]
    assert _row(cqrs_id, 7) == ("new", 0)


@CQRS_IDS
def test_delete_through_a_stale_instance__removes_the_row(apply_batch, cqrs_id):
    """django-cqrs sends the revision of the instance in memory plus one: 2 here, for a
    row the replica holds at revision 4. The master deleted after the last change."""
    apply_batch(*[ev.save(cqrs_id, 7, r, at(r), name=f"v{r}") for r in range(5)])
    assert apply_batch(ev.delete(cqrs_id, 7, 2, at(10))) == ["applied"]
    assert _row(cqrs_id, 7) is None
    assert _tombstone(cqrs_id, 7) == (2, at(10))
    assert apply_batch(ev.save(cqrs_id, 7, 4, at(4), name="v4")) == ["ignored"]


@CQRS_IDS
def test_repair_sync__replaces_a_row_frozen_at_a_forged_revision(apply_batch, cqrs_id, caplog):
    assert apply_batch(ev.save(cqrs_id, 7, 0, at(0), name="real"),
                       ev.save(cqrs_id, 7, FORGED, at(0.5), name="forged")) == ["applied"] * 2
    assert apply_batch(ev.save(cqrs_id, 7, 1, at(1), name="real b")) == ["ignored"]
    assert apply_batch(ev.sync(cqrs_id, 7, 1, at(1), name="real b")) == ["ignored"]

    with caplog.at_level(logging.WARNING, logger="cqrs_outbox.replica.apply"):
        assert apply_batch(repair(cqrs_id, 7, 1, at(1), name="real b")) == ["applied"]
    assert _row(cqrs_id, 7) == ("real b", 1)
    assert f"Repairing {cqrs_id}:7 from the master: revision {FORGED} -> revision 1" in \
        caplog.messages
    assert apply_batch(ev.save(cqrs_id, 7, 2, at(2), name="real c")) == ["applied"]
    assert _row(cqrs_id, 7) == ("real c", 2)


@CQRS_IDS
def test_repair_sync__brings_back_a_row_behind_a_forged_tombstone(apply_batch, cqrs_id, caplog):
    assert apply_batch(ev.save(cqrs_id, 7, 0, at(0), name="real"),
                       ev.delete(cqrs_id, 7, FORGED, at(10**6))) == ["applied"] * 2
    assert apply_batch(ev.sync(cqrs_id, 7, 0, at(0), name="real")) == ["ignored"]
    with caplog.at_level(logging.WARNING, logger="cqrs_outbox.replica.apply"):
        assert apply_batch(repair(cqrs_id, 7, 0, at(0), name="real")) == ["applied"]
    assert _row(cqrs_id, 7) == ("real", 0)
    assert _tombstone(cqrs_id, 7) is None
    assert any(f"no row (deleted at revision {FORGED}) -> revision 0" in m
               for m in caplog.messages)


def test_repair_marker_on_a_save__is_no_repair(apply_batch):
    apply_batch(ev.save("author", 7, 5, at(5), name="held"))
    forged = ev.save("author", 7, 1, at(1), name="older")
    forged[wire.REPAIR_KEY] = True
    assert apply_batch(forged) == ["ignored"]
    assert _row("author", 7) == ("held", 5)


def test_tombstone_from_before_times_were_kept__revisions_decide(apply_batch):
    Tombstone.objects.create(cqrs_id="author", instance_pk="7", revision=3)
    assert apply_batch(ev.save("author", 7, 3, at(100), name="x")) == ["ignored"]
    assert apply_batch(ev.save("author", 7, 4, at(100), name="y")) == ["applied"]
    assert _row("author", 7) == ("y", 4)
