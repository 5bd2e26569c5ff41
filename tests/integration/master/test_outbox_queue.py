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


# -- an instance copied after its save (Django's idiom: pk = None, save again) ----------


def test_instance_copied_after_its_save__each_row_gets_its_own_event(outbox_rows):
    """The save queued for the original row is not turned into a second event of the
    copy: the original's change is sent as its row holds it, the copy as created."""
    author = models.Author.objects.create(name="orig")
    original = author.pk
    with transaction.atomic():
        author.name = "renamed"
        author.save()
        author.pk, author._state.adding, author.name = None, True, "copy"
        author.save()
    rows = outbox_rows()
    # The copy's revision is whatever the instance held (Django 6 reads the raised one
    # back after the save; earlier releases leave the expression), so it is not compared.
    assert [(r["instance_pk"], r["body"]["instance_data"]["name"]) for r in rows] == [
        (str(original), "orig"), (str(original), "renamed"), (str(author.pk), "copy")]
    assert [r["revision"] for r in rows[:2]] == [0, 1]
    assert rows[1]["body"]["instance_data"]["id"] == original


def test_instance_copied_by_bulk_create_after_its_save__each_row_gets_its_own_event(
        outbox_rows):
    tracked = models.Tracked.objects.create(name="orig")
    original = tracked.pk
    with transaction.atomic():
        tracked.name = "renamed"
        tracked.save()
        tracked.pk, tracked._state.adding, tracked.cqrs_revision = None, True, 0
        [copy] = models.Tracked.objects.bulk_create([tracked])
    rows = outbox_rows()
    assert [(r["instance_pk"], r["revision"], r["body"]["instance_data"]["name"])
            for r in rows] == [(str(original), 0, "orig"), (str(original), 1, "renamed"),
                               (str(copy.pk), 0, "renamed")]
    # What the original held before the transaction went with the instance to the copy.
    assert rows[1]["body"]["previous_data"] is None


def test_instance_copied_after_its_save__an_original_gone_from_the_table_sends_no_save(
        outbox_rows):
    """A row removed behind the ORM's back before commit has nothing to send; the copy
    still gets its event."""
    author = models.Author.objects.create(name="orig")
    original = author.pk
    table = connection.ops.quote_name(models.Author._meta.db_table)
    with transaction.atomic():
        author.name = "renamed"
        author.save()
        author.pk, author._state.adding, author.name = None, True, "copy"
        author.save()
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [original])
    assert [(r["instance_pk"], r["body"]["instance_data"]["name"])
            for r in outbox_rows()] == [(str(original), "orig"), (str(author.pk), "copy")]


# -- drop: a row deleted in the transaction that saved it -------------------------------


def test_create_then_delete_in_one_transaction__only_the_delete_is_written(
        outbox_rows, caplog):
    """The SAVE queued by the create is dropped by the delete: no SAVE with a null id; the
    dropped save is logged as django-cqrs logs it, once."""
    with caplog.at_level("ERROR", logger="cqrs_outbox"), transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        pk = author.pk
        author.delete()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"(pk={pk})" in errors[0]
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
    models.Author._base_manager.filter(pk=author.pk).update(name="Bob")  # no event
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


def test_saves_count__zero_for_an_instance_never_saved_and_counts_each_save():
    """An instance read but not saved has saved 0 times; two saves in one transaction
    count 2, and a new transaction starts again from 0."""
    author = models.Author.objects.create(name="Ann")
    fetched = models.Author.objects.get(pk=author.pk)
    assert fetched.cqrs_saves_count == 0 and fetched.is_initial_cqrs_save
    with transaction.atomic():
        assert fetched.cqrs_saves_count == 0
        fetched.save()
        fetched.save()
        assert fetched.cqrs_saves_count == 2 and not fetched.is_initial_cqrs_save
    assert fetched.cqrs_saves_count == 0


def test_drop__outside_a_transaction_drops_nothing_and_says_so(outbox_rows, caplog):
    """Outside a transaction there is no queue: drop reports that nothing was dropped,
    and deleting a row saved in an earlier transaction logs no lost-save error."""
    author = models.Author.objects.create(name="Ann")
    assert outbox.drop("default", "author", author.pk, ("SAVE", "SYNC")) is False
    with caplog.at_level("ERROR", logger="cqrs_outbox"):
        author.delete()
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert [r["signal_type"] for r in outbox_rows()] == ["SAVE", "DELETE"]


def test_first_use_of_a_connection__update_and_delete_queue_and_log_nothing(
        outbox_rows, caplog):
    """A thread's connection that never queued an event (no queue yet) updates and deletes
    a row like any other: the SAVE and DELETE are written and no lost-save error logged."""
    import threading

    from django.db import connections

    author = models.Author.objects.create(name="Ann")
    errors = []

    def in_a_fresh_thread():
        try:
            assert outbox.STATE_ATTR not in connections["default"].__dict__
            with transaction.atomic():
                fetched = models.Author.objects.get(pk=author.pk)
                assert outbox.queued("default", outbox.event_key("author", author.pk,
                                                                  "SAVE")) is False
                fetched.name = "Bob"
                fetched.save()
            other = models.Author.objects.create(name="Gone")
            connections["default"].__dict__.pop(outbox.STATE_ATTR)
            other.delete()
        except Exception as exc:  # noqa: BLE001 - reported in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    with caplog.at_level("ERROR", logger="cqrs_outbox"):
        worker = threading.Thread(target=in_a_fresh_thread)
        worker.start()
        worker.join()
    assert errors == []
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    rows = outbox_rows()
    assert [(r["signal_type"], r["revision"]) for r in rows] == [
        ("SAVE", 0), ("SAVE", 1), ("SAVE", 0), ("DELETE", 1)]
    assert rows[1]["body"]["instance_data"]["name"] == "Bob"


def test_saves_count__a_rolled_back_transactions_saves_do_not_count_in_the_next():
    """Saves of a transaction that rolled back are forgotten: the next transaction's count
    of the same instance starts at 0."""
    author = models.Author.objects.create(name="Ann")
    with pytest.raises(RuntimeError), transaction.atomic():
        author.save()
        assert author.cqrs_saves_count == 1
        raise RuntimeError("roll back")
    with transaction.atomic():
        assert author.cqrs_saves_count == 0
        author.save()
        assert author.cqrs_saves_count == 1



def _in_a_fresh_thread(work):
    # Run `work` on connections new to the queue, whose transactions are numbered from 0
    # on every database; return what it returned, or raise what it raised.
    import threading

    from django.db import connections

    done = {}

    def run():
        try:
            done["result"] = work()
        except Exception as exc:  # noqa: BLE001 - raised again in the test's thread
            done["error"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in done:
        raise done["error"]
    return done["result"]


def _copy_to_other(author):
    author.pk, author._state.adding = None, True
    with transaction.atomic(using="other"):
        author.save(using="other")
        return author.cqrs_saves_count


def test_saves_count__an_instance_saved_on_one_database_then_another_starts_afresh():
    """An instance saved in a transaction on one database, then copied to another in a
    transaction there, has saved once in each: its count does not carry over, though
    each connection numbers its transactions on its own (from 0 in a new thread)."""

    def work():
        author = models.Author(name="Ann")
        with transaction.atomic():
            author.save()
            counts = [author.cqrs_saves_count]
        return [*counts, author.cqrs_saves_count, _copy_to_other(author)]

    assert _in_a_fresh_thread(work) == [1, 0, 1]
    assert models.Author.objects.using("other").get().name == "Ann"


def test_saves_count__a_save_outside_a_transaction_forgets_a_rolled_back_count():
    """A save outside any transaction counts nothing and forgets the count a rolled-back
    transaction left on the instance: copied to another database afterwards, it has
    saved once there."""

    def work():
        author = models.Author(name="Ann")
        with pytest.raises(RuntimeError), transaction.atomic():
            author.save()
            raise RuntimeError("roll back")
        author.pk, author._state.adding = None, True
        author.save()
        return [author.cqrs_saves_count, _copy_to_other(author)]

    assert _in_a_fresh_thread(work) == [0, 1]
    assert [a.name for a in models.Author.objects.all()] == ["Ann"]
    assert models.Author.objects.using("other").get().name == "Ann"


def test_saves_count__a_rolled_back_count_does_not_carry_to_another_databases_transaction():
    """A rollback forgets the count its transaction left on an instance, as a commit
    does: saved in a transaction on one database that rolls back, then in a transaction
    on another whose number is the same (0 on both in a new thread), it has saved once
    there, not twice."""

    def work():
        author = models.Author(name="Ann")
        with pytest.raises(RuntimeError), transaction.atomic():
            author.save()
            raise RuntimeError("roll back")
        return [author.cqrs_saves_count, _copy_to_other(author)]

    assert _in_a_fresh_thread(work) == [0, 1]
    assert not models.Author.objects.exists()
    assert models.Author.objects.using("other").get().name == "Ann"

# -- the end of a transaction ------------------------------------------------------------


def test_connection_closed_inside_a_transaction__the_next_transaction_writes_its_event(
        outbox_rows):
    """A connection closed inside an atomic block ends its transaction with neither
    commit() nor rollback(): the server rolls it back, and Django empties the on_commit
    list. The queue's marker went with that list, so the next transaction, at the same
    (outermost) level, must register a marker of its own: its SAVE is written, the
    closed transaction's is not."""
    with transaction.atomic():
        models.Author.objects.create(name="Lost")
        connection.close()
    with transaction.atomic():
        kept = models.Author.objects.create(name="Kept")
    assert list(models.Author.objects.values_list("name", flat=True)) == ["Kept"]
    rows = outbox_rows()
    assert _saves_and_deletes(rows) == [("SAVE", str(kept.pk), 0)]
    assert rows[0]["body"]["instance_data"]["name"] == "Kept"


def test_saves_count__a_connection_closed_inside_a_transaction_ends_its_count(outbox_rows):
    """A connection closed inside an atomic block ends its transaction (the server rolls
    it back): the saves made in it count no more, and the next transaction on the
    reconnected connection counts its own from 0, as after a rollback."""
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.save()
        author.save()
        assert author.cqrs_saves_count == 2
        connection.close()
    assert author.cqrs_saves_count == 0
    with transaction.atomic():
        assert author.cqrs_saves_count == 0
        author.name = "Bob"
        author.save()
        assert (author.cqrs_saves_count, author.is_initial_cqrs_save) == (1, True)
    assert [(r["signal_type"], r["revision"]) for r in outbox_rows()] == [
        ("SAVE", 0), ("SAVE", 1)]
    assert outbox_rows()[-1]["body"]["instance_data"]["name"] == "Bob"


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_the_queue_keeps_no_saved_instance_past_its_transaction(outbox_rows, ending):
    """Once its transaction commits or rolls back, the connection's queue holds no
    reference to an instance saved in it: what it remembers for `cqrs_saves_count`
    does not grow for the life of the connection."""
    import gc
    import weakref

    with transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        author.save()
        assert author.cqrs_saves_count == 2
        if ending == "rollback":
            transaction.set_rollback(True)
    gone = weakref.ref(author)
    del author
    gc.collect()
    assert gone() is None
    assert len(outbox_rows()) == (1 if ending == "commit" else 0)
