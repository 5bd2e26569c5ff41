"""previous_data and the save counters behave as django-cqrs's do.

django-cqrs (`dj_cqrs.mixins.RawMasterMixin.save`) sets `cqrs_revision = F() + 1` before
it reads the tracker, so an update's previous_data holds the old `cqrs_revision` (when
tracked) and the old value of every tracked field assigned an F() expression; the
expression is read back when the event is built. It counts saves per instance within a
transaction, `is_initial_cqrs_save` is `count < 2`, and the count goes back to 0 at
commit and on a save outside any transaction.
"""

import pytest
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_save

from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


def _bodies(outbox_rows):
    return [r["body"] for r in outbox_rows() if r["cqrs_id"] == "counter"]


def test_previous_data__create_lists_set_fields_with_none(outbox_rows):
    models.Counter.objects.create(name="c")
    [body] = _bodies(outbox_rows)
    assert body["previous_data"] == {"name": None, "hits": None, "cqrs_revision": None}


def test_previous_data__update_carries_old_revision_and_old_f_expression_value(outbox_rows):
    obj = models.Counter.objects.create(name="c", hits=2)
    obj = models.Counter.objects.get(pk=obj.pk)
    obj.hits = F("hits") + 5
    obj.save()
    body = _bodies(outbox_rows)[-1]
    assert body["previous_data"] == {"hits": 2, "cqrs_revision": 0}
    assert body["instance_data"]["hits"] == 7
    assert body["instance_data"]["cqrs_revision"] == 1


def test_previous_data__f_expression_is_resolved_for_the_next_transaction(outbox_rows):
    obj = models.Counter.objects.create(name="c", hits=2)
    obj = models.Counter.objects.get(pk=obj.pk)
    obj.hits = F("hits") + 5
    obj.save()
    assert obj.hits == 7  # read back when the event was built
    obj.name = "renamed"
    obj.save()
    assert _bodies(outbox_rows)[-1]["previous_data"] == {"name": "c", "cqrs_revision": 1}


def test_saves_count__outside_a_transaction_stays_zero():
    obj = models.Author(name="a")
    obj.save()
    assert (obj.cqrs_saves_count, obj.is_initial_cqrs_save) == (0, True)
    obj.save()
    assert (obj.cqrs_saves_count, obj.is_initial_cqrs_save) == (0, True)


def test_saves_count__rises_per_save_in_a_transaction_and_resets_at_commit():
    seen = []

    def record(sender, instance, **kwargs):
        seen.append((instance.cqrs_saves_count, instance.is_initial_cqrs_save))

    post_save.connect(record, sender=models.Author)
    try:
        with transaction.atomic():
            obj = models.Author.objects.create(name="a")
            obj.save()
            obj.save()
            assert obj.cqrs_saves_count == 3
        assert (obj.cqrs_saves_count, obj.is_initial_cqrs_save) == (0, True)
    finally:
        post_save.disconnect(record, sender=models.Author)
    # True through the whole of the first save, False from the second on.
    assert seen == [(1, True), (2, False), (3, False)]


def test_saves_count__rolled_back_transaction_does_not_carry_over():
    obj = models.Author.objects.create(name="a")
    with pytest.raises(RuntimeError), transaction.atomic():
        obj.save()
        obj.save()
        raise RuntimeError
    with transaction.atomic():
        obj.save()
        assert (obj.cqrs_saves_count, obj.is_initial_cqrs_save) == (1, True)


def test_reset_saves_count__next_save_gets_an_event_and_revision_of_its_own(outbox_rows):
    obj = models.Author.objects.create(name="a")
    with transaction.atomic():
        obj.name = "b"
        obj.save()
        obj.reset_cqrs_saves_count()
        assert obj.cqrs_saves_count == 0
        obj.name = "c"
        obj.save()
    rows = [r for r in outbox_rows() if r["cqrs_id"] == "author"]
    assert [(r["revision"], r["body"]["instance_data"]["name"]) for r in rows] == [
        (0, "a"), (1, "b"), (2, "c")
    ]


def test_reset_saves_count__after_set_rollback_is_harmless_and_the_next_transaction_counts(
        outbox_rows):
    """django-cqrs's `reset_cqrs_saves_count()` only sets the instance's counter back to 0.

    Its own test of sequential transactions saves inside `atomic()`, marks that block for
    rollback with `transaction.set_rollback(True)`, resets the counter, then saves again in
    a new transaction: no error, two events in all (the create at revision 0 and the
    second transaction's save at revision 1), and the rolled-back save sends nothing.
    """
    with transaction.atomic():
        obj = models.Author.objects.create(name="1")
    with transaction.atomic():
        obj.name = "3"
        obj.save()
        transaction.set_rollback(True)
        obj.reset_cqrs_saves_count()
        assert obj.cqrs_saves_count == 0
    with transaction.atomic():
        obj.name = "2"
        obj.save()
    obj.refresh_from_db()
    assert obj.cqrs_revision == 1
    rows = [r for r in outbox_rows() if r["cqrs_id"] == "author"]
    assert [(r["revision"], r["body"]["instance_data"]["name"]) for r in rows] == [
        (0, "1"), (1, "2")
    ]


def test_reset_saves_count__in_a_savepoint_marked_for_rollback_keeps_the_outer_events(
        outbox_rows):
    """A reset inside a savepoint that will roll back neither raises nor loses an event.

    django-cqrs only zeroes the counter there, so the next save in the outer transaction
    queues a second event, and both are serialised from the instance at commit. Ours does
    the same when the transaction cannot be read from at the reset: both events carry the
    row as it stands at commit, so the last one a replica applies is the final state.
    """
    obj = models.Author.objects.create(name="a")
    with transaction.atomic():
        obj.name = "b"
        obj.save()
        with transaction.atomic():
            transaction.set_rollback(True)
            obj.reset_cqrs_saves_count()
        obj.name = "c"
        obj.save()
    obj.refresh_from_db()
    assert (obj.cqrs_revision, obj.name) == (2, "c")
    rows = [r for r in outbox_rows() if r["cqrs_id"] == "author"]
    assert [(r["revision"], r["body"]["instance_data"]["name"]) for r in rows] == [
        (0, "a"), (2, "c"), (2, "c")
    ]
