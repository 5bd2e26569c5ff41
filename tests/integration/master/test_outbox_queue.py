"""The transaction's event queue: what a delete drops, what an early flush leaves to
rewrite, what a rolled-back savepoint takes with it, and queueing outside a transaction.

Every test reads the outbox rows the transaction left, on the model whose default
serializer reads the instance in memory (so a stale or dropped queue entry shows).
"""

import pytest
from django.db import connection, transaction

from cqrs_outbox.master import outbox
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def _saves_and_deletes(rows):
    return [(r["signal_type"], r["instance_pk"], r["revision"]) for r in rows]


# -- drop: a row deleted in the transaction that saved it -------------------------------


def test_create_then_delete_in_one_transaction__only_the_delete_is_written(outbox_rows):
    """The SAVE queued by the create is dropped by the delete: no SAVE with a null id."""
    with transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        pk = author.pk
        author.delete()
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("DELETE", str(pk), 1)]
    assert rows[0]["body"]["instance_data"]["id"] == pk
    assert rows[0]["body"]["instance_pk"] == pk


def test_update_then_delete_in_one_transaction__the_update_leaves_no_event(outbox_rows):
    """An existing row saved then deleted in one transaction gets only its DELETE there."""
    author = models.Author.objects.create(name="Ann")
    pk = author.pk
    with transaction.atomic():
        author.name = "Bob"
        author.save()
        models.Author.objects.get(pk=pk).delete()
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(pk), 0), ("DELETE", str(pk), 2)]
    assert all(r["body"]["instance_data"]["id"] == pk for r in rows)


@pytest.mark.parametrize("model, key", [(models.StrKeyed, "k1"), (models.Author, None)])
def test_delete__drops_only_that_rows_save_not_its_neighbours(outbox_rows, model, key):
    """Deleting one row drops its own queued SAVE, and keeps the SAVE of another row."""
    with transaction.atomic():
        if key is None:
            gone, kept = model.objects.create(name="a"), model.objects.create(name="b")
        else:
            gone = model.objects.create(pk=key, name="a")
            kept = model.objects.create(pk=key + "x", name="b")
        gone_pk = gone.pk
        gone.delete()
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(kept.pk), 0),
                                        ("DELETE", str(gone_pk), 1)]
    assert "None" not in {r["instance_pk"] for r in rows}


def test_delete_of_a_row_whose_save_was_flushed_early__keeps_the_written_save(outbox_rows):
    """A SAVE already in the outbox (an early flush) cannot be unwritten: it stays, and
    the DELETE follows it."""
    with transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        pk = author.pk
        [flushed] = outbox.flush()
        author.delete()
    rows = outbox_rows()
    assert [r["id"] for r in rows][0] == flushed
    assert _saves_and_deletes(rows) == [("SAVE", str(pk), 0), ("DELETE", str(pk), 1)]
    assert rows[0]["body"]["instance_data"] == {**rows[0]["body"]["instance_data"],
                                                "id": pk, "name": "Ann"}


# -- an early flush --------------------------------------------------------------------


def test_save_after_an_early_flush__rewrites_the_flushed_save_not_a_second_one(outbox_rows):
    """A row saved, flushed, and saved again in one transaction has one SAVE, at one
    revision, carrying the last state."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "First"
        author.save()
        [flushed] = outbox.flush()
        assert outbox.flush() == []  # nothing new: the entry is clean
        author.name = "Second"
        author.save()
        assert outbox.flush() == []  # rewritten in place, no new id
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(author.pk), 0),
                                        ("SAVE", str(author.pk), 1)]
    assert rows[1]["id"] == flushed
    assert rows[1]["body"]["instance_data"]["name"] == "Second"
    assert rows[1]["body"]["instance_data"]["cqrs_revision"] == 1


def test_flush__outside_a_transaction_writes_nothing_and_returns_no_id(outbox_rows):
    """With autocommit on there is no queue to flush: flush() is a no-op."""
    models.Author.objects.create(name="Ann")
    count = len(outbox_rows())
    assert outbox.flush() == []
    assert len(outbox_rows()) == count == 1


# -- a savepoint that rolls back -------------------------------------------------------


def test_second_save_in_a_rolled_back_savepoint__the_event_carries_the_outer_values(
    outbox_rows
):
    """A save of the same row inside a savepoint that rolls back must not replace what
    the outer transaction queued: the event is built from the outer save."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "Outer"
        author.save()
        with pytest.raises(RuntimeError), transaction.atomic():
            copy = models.Author.objects.get(pk=author.pk)
            copy.name = "Inner"
            copy.save()
            raise RuntimeError("the savepoint rolls back")
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(author.pk), 0),
                                        ("SAVE", str(author.pk), 1)]
    assert rows[1]["body"]["instance_data"]["name"] == "Outer"
    assert rows[1]["body"]["instance_data"]["cqrs_revision"] == 1
    assert models.Author.objects.get(pk=author.pk).name == "Outer"


def test_second_save_in_a_released_savepoint__the_event_carries_the_inner_values(
    outbox_rows
):
    """A savepoint that is released keeps its save: the one event is the inner state."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "Outer"
        author.save()
        with transaction.atomic():
            copy = models.Author.objects.get(pk=author.pk)
            copy.name = "Inner"
            copy.save()
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Inner"
    assert rows[1]["body"]["instance_data"]["cqrs_revision"] == 1


def test_nested_savepoints__each_rollback_goes_back_one_level(outbox_rows):
    """Three levels save the row; the innermost rolls back, the middle is released: the
    event carries the middle level's values."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "L1"
        author.save()
        with transaction.atomic():
            middle = models.Author.objects.get(pk=author.pk)
            middle.name = "L2"
            middle.save()
            with pytest.raises(RuntimeError), transaction.atomic():
                inner = models.Author.objects.get(pk=author.pk)
                inner.name = "L3"
                inner.save()
                raise RuntimeError("the innermost savepoint rolls back")
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "L2"
    assert models.Author.objects.get(pk=author.pk).name == "L2"


def test_rolled_back_savepoint_after_an_early_flush__the_outbox_keeps_the_outer_event(
    outbox_rows
):
    """The flushed SAVE, rewritten inside a savepoint that rolls back, is the outer save's
    again at commit, and stays one row."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "Outer"
        author.save()
        [flushed] = outbox.flush()
        with pytest.raises(RuntimeError), transaction.atomic():
            copy = models.Author.objects.get(pk=author.pk)
            copy.name = "Inner"
            copy.save()
            outbox.flush()
            raise RuntimeError("the savepoint rolls back")
    rows = outbox_rows()
    assert [r["id"] for r in rows][1] == flushed
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Outer"


# -- outside a transaction --------------------------------------------------------------


def test_enqueue_outside_a_transaction__writes_the_event_at_once(outbox_rows):
    """A bulk signal sent by hand queues outside any transaction: the event is written
    in a transaction of its own, not lost."""
    author = models.Author.objects.create(name="Ann")
    models.Author.objects.filter(pk=author.pk).update(name="Bob")
    author.refresh_from_db()
    assert not connection.in_atomic_block
    outbox.enqueue("default", outbox.event_key("author", author.pk, "SYNC"), author)
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(author.pk), 0),
                                        ("SYNC", str(author.pk), 0)]
    assert rows[1]["body"]["instance_data"]["name"] == "Bob"
    assert not connection.in_atomic_block


def test_queued__is_false_outside_a_transaction_and_after_its_commit(outbox_rows):
    """`queued` answers for the current transaction only."""
    key = None
    with transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        key = outbox.event_key("author", author.pk, "SAVE")
        assert outbox.queued("default", key) is True
        assert outbox.queued("default", outbox.event_key("author", -1, "SAVE")) is False
    assert outbox.queued("default", key) is False
    assert len(outbox_rows()) == 1
