"""Events carry the state at commit: built and inserted just before COMMIT, in one INSERT."""

import logging
from unittest import mock

import pytest
from django.db import DataError, IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext

from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import EventBuildError
from cqrs_outbox.master import outbox
from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def _outbox_inserts(queries):
    wanted = f"INSERT INTO {contract.OUTBOX_TABLE} "
    return [q["sql"] for q in queries if q["sql"].replace('"', "").startswith(wanted)]


def test_writer_and_books_in_one_block__writer_event_lists_both_books(outbox_rows):
    with transaction.atomic():
        writer = models.Writer.objects.create(name="Ann")
        models.Book.objects.create(writer=writer, title="First")
        models.Book.objects.create(writer=writer, title="Second")
    [row] = outbox_rows()
    assert row["cqrs_id"] == "writer"
    assert row["body"]["instance_data"]["books"] == ["First", "Second"]


def test_no_event_is_in_the_outbox_before_commit(outbox_rows):
    with transaction.atomic():
        models.Author.objects.create(name="Ann")
        assert OutboxEvent.objects.count() == 0
    assert len(outbox_rows()) == 1


def test_ten_saves_in_one_transaction__one_insert_into_the_outbox(outbox_rows):
    authors = [models.Author.objects.create(name=f"a{i}") for i in range(10)]
    with CaptureQueriesContext(connections["default"]) as ctx, transaction.atomic():
        for author in authors:
            author.name += "!"
            author.save()
    assert len(_outbox_inserts(ctx.captured_queries)) == 1
    rows = outbox_rows()[10:]
    assert [r["instance_pk"] for r in rows] == [str(a.pk) for a in authors]
    assert {r["revision"] for r in rows} == {1}


HOSTILE_NAMES = ["O'Brien", "back\\slash\\", "%s and %(x)s", "$$ dollar $$", "ünï ✓ 😀",
                 "'); COMMIT; DROP TABLE x; --", "tab\tline\nend", "E'\\x00'"]


@pytest.mark.parametrize("count", [6, 7, 64])
def test_events_of_many_saves__carry_every_value_exactly(outbox_rows, count):
    """Past 50 parameters (seven events or more) psycopg 3 gets the event INSERT with its
    values quoted in; either way each event carries the saved text byte for byte, quotes,
    backslashes, placeholders and all, and the one INSERT commits with the rows."""
    names = [HOSTILE_NAMES[i % len(HOSTILE_NAMES)] + f" #{i}" for i in range(count)]
    with CaptureQueriesContext(connections["default"]) as ctx, transaction.atomic():
        for name in names:
            models.Author.objects.create(name=name)
    assert len(_outbox_inserts(ctx.captured_queries)) == 1
    rows = outbox_rows()
    assert [r["body"]["instance_data"]["name"] for r in rows] == names
    assert sorted(models.Author.objects.values_list("name", flat=True)) == sorted(names)


def test_bulk_create_and_saves_share_the_one_insert(outbox_rows):
    with CaptureQueriesContext(connections["default"]) as ctx, transaction.atomic():
        models.Author.cqrs.bulk_create([models.Author(name=f"b{i}") for i in range(3)])
        models.Author.objects.create(name="single")
    assert len(_outbox_inserts(ctx.captured_queries)) == 1
    assert len(outbox_rows()) == 4


def test_rolled_back_savepoint__drops_only_the_events_saved_inside(outbox_rows):
    with transaction.atomic():
        kept = models.Author.objects.create(name="kept")
        try:
            with transaction.atomic():
                models.Author.objects.create(name="gone")
                kept.name = "kept, renamed inside"
                kept.save()
                raise RuntimeError("inner fails")
        except RuntimeError:
            pass
        after = models.Author.objects.create(name="after")
    rows = outbox_rows()
    assert [r["instance_pk"] for r in rows] == [str(kept.pk), str(after.pk)]
    assert models.Author.objects.filter(name="gone").count() == 0


def test_serializer_raising_at_commit__rolls_back_and_names_model_pk_serializer(outbox_rows):
    with pytest.raises(EventBuildError) as caught, transaction.atomic():
        models.Author.objects.create(name="innocent")
        obj = models.Fragile.objects.create(name="boom")
    message = str(caught.value)
    assert "Fragile" in message and f"pk={obj.pk}" in message
    assert "tests.testproject.master.serializers.FragileSerializer" in message
    assert "cannot serialise 'boom'" in message
    assert models.Author.objects.count() == 0 and models.Fragile.objects.count() == 0
    assert outbox_rows() == []


def test_serializer_raising_in_autocommit__create_fails_and_nothing_commits(outbox_rows):
    with pytest.raises(EventBuildError):
        models.Fragile.objects.create(name="boom too")
    assert models.Fragile.objects.count() == 0
    assert outbox_rows() == []
    models.Fragile.objects.create(name="fine")  # the connection is usable afterwards
    assert len(outbox_rows()) == 1


@pytest.mark.parametrize("update", [False, True])
def test_save_failing_to_queue_its_event_inside_a_block__the_block_commits_nothing(
    outbox_rows, update,
):
    # The caller catches the error and goes on: the row is written but its event was
    # never queued, so the block must roll back rather than commit the row alone.
    author = models.Author.objects.create(name="Ann") if update else models.Author(name="Ann")
    with transaction.atomic():
        author.name = "changed"
        with mock.patch.object(outbox, "enqueue", side_effect=RuntimeError("no queue")), \
                pytest.raises(RuntimeError, match="no queue"):
            author.save()
        assert transaction.get_rollback()
    assert list(models.Author.objects.values_list("name", "cqrs_revision")) == (
        [("Ann", 0)] if update else [])
    assert len(outbox_rows()) == (1 if update else 0)


def test_delete_after_save_in_one_transaction__only_the_delete_event(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "renamed"
        author.save()
        pk = author.pk
        author.delete()
    rows = outbox_rows()
    assert [(r["signal_type"], r["revision"]) for r in rows] == [("SAVE", 0), ("DELETE", 2)]
    assert rows[1]["body"]["instance_data"]["id"] == pk


def test_create_and_delete_in_one_transaction__only_the_delete_event(outbox_rows):
    with transaction.atomic():
        writer = models.Writer.objects.create(name="short-lived")
        writer.delete()
    assert [r["signal_type"] for r in outbox_rows()] == ["DELETE"]


def test_two_aliases_in_one_request__each_alias_gets_its_own_events(outbox_rows):
    with transaction.atomic(using="default"), transaction.atomic(using="other"):
        models.Author.objects.create(name="here")
        models.Author(name="there").save(using="other")
        models.Author.objects.using("other").create(name="there too")
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows("default")] == ["here"]
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows("other")] == [
        "there", "there too"
    ]


def test_two_aliases__rollback_of_one_keeps_the_other(outbox_rows):
    with transaction.atomic(using="default"):
        models.Author.objects.create(name="here")
        with pytest.raises(RuntimeError), transaction.atomic(using="other"):
            models.Author(name="there").save(using="other")
            raise RuntimeError("other fails")
    assert len(outbox_rows("default")) == 1 and outbox_rows("other") == []


def test_relate_cqrs_serialization_filters_row_out__save_commits_one_error_as_django_cqrs(
    outbox_rows, caplog
):
    with caplog.at_level(logging.WARNING, logger="cqrs_outbox"):
        writer = models.Writer.objects.create(name="hidden one")
    assert models.Writer.objects.filter(pk=writer.pk).exists()
    assert outbox_rows() == []
    [record] = [r for r in caplog.records if r.name.startswith("cqrs_outbox")]
    assert record.levelno == logging.ERROR  # django-cqrs's level (dj_cqrs/signals.py)
    assert "Writer" in record.getMessage() and f"pk={writer.pk}" in record.getMessage()
    assert "The instance doesn't exist" in record.getMessage()  # django-cqrs's phrase


def test_manual_transaction_commit__writes_the_events(outbox_rows):
    transaction.set_autocommit(False)
    try:
        models.Author.objects.create(name="manual")
        assert OutboxEvent.objects.count() == 0
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    [row] = outbox_rows()
    assert row["body"]["instance_data"]["name"] == "manual"


def test_manual_transaction_rollback__writes_nothing_and_next_commit_is_clean(outbox_rows):
    transaction.set_autocommit(False)
    try:
        models.Author.objects.create(name="dropped")
        transaction.rollback()
        models.Author.objects.create(name="kept")
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows()] == ["kept"]


def test_later_change_of_saved_instance__event_carries_the_last_saved_state(outbox_rows):
    with transaction.atomic():
        author = models.Author.objects.create(name="first")
        author.name = "second"
        author.save()
    [row] = outbox_rows()
    assert row["body"]["instance_data"]["name"] == "second"


def test_book_deleted_after_writer_save__writer_event_leaves_it_out(outbox_rows):
    # A serializer reading a related table at flush sees books added and removed later.
    with transaction.atomic():
        writer = models.Writer.objects.create(name="Bea")
        book = models.Book.objects.create(writer=writer, title="Draft")
        models.Book.objects.create(writer=writer, title="Final")
        book.delete()
    [row] = outbox_rows()
    assert row["body"]["instance_data"]["books"] == ["Final"]


def test_deferred_constraint_failing_at_commit__nothing_committed_and_connection_usable(
    outbox_rows,
):
    # Django creates foreign keys DEFERRABLE INITIALLY DEFERRED: checked only at COMMIT,
    # which on psycopg 3 travels in the same query as the event INSERT.
    with pytest.raises(IntegrityError), transaction.atomic():
        models.Author.objects.create(name="lost")
        models.Book.objects.create(writer_id=987654, title="orphan")
    assert models.Author.objects.count() == 0 and outbox_rows() == []
    models.Author.objects.create(name="next")
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows()] == ["next"]


@pytest.mark.postgres
@pytest.mark.mysql
def test_outbox_insert_failing_at_commit__nothing_committed_and_connection_usable(
    outbox_rows,
):
    author = models.Author.objects.create(name="Ann")
    with pytest.raises(DataError), transaction.atomic():
        author.name = "renamed"
        author.save()
        author.cqrs_sync(queue="q" * 600)  # a routing key longer than its column
    author.refresh_from_db()
    assert (author.name, author.cqrs_revision) == ("Ann", 0)
    assert len(outbox_rows()) == 1
    author.name = "again"
    author.save()
    assert [r["revision"] for r in outbox_rows()] == [0, 1]


@pytest.mark.postgres
@pytest.mark.mysql
def test_new_event_row__bookkeeping_columns_filled_by_the_database(outbox_rows):
    models.Author.objects.create(name="Ann")
    [row] = outbox_rows()
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, "")
    assert row["available_at"] is not None and row["created_at"] is not None


@pytest.mark.postgres
def test_new_event_row__on_postgresql_its_times_are_the_servers(outbox_rows):
    """The relay compares due times with the database's clock, so on PostgreSQL the
    server stamps an event (its transaction's time), not the application host, whose
    clock may be ahead and would hold the event back."""
    with transaction.atomic():
        models.Author.objects.create(name="Ann")
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT now()")
            [(started,)] = cursor.fetchall()
    [row] = outbox_rows()
    assert row["created_at"] == row["available_at"] == started


@pytest.mark.postgres
def test_server_side_binding__the_insert_goes_alone_and_row_and_event_commit(outbox_rows):
    """With psycopg 3's server-side binding (OPTIONS server_side_binding=True) a query
    cannot carry two statements, so the event INSERT must not carry the COMMIT: the
    transaction commits, with the row and its one event."""
    conn = connections["default"]
    options = conn.settings_dict["OPTIONS"]
    conn.close()
    options["server_side_binding"] = True
    try:
        with transaction.atomic():
            author = models.Author.objects.create(name="bound")
            author.name = "bound twice"
            author.save()
    finally:
        options.pop("server_side_binding")
        conn.close()
    assert list(models.Author.objects.values_list("name", flat=True)) == ["bound twice"]
    [row] = outbox_rows()
    assert (row["instance_pk"], row["revision"]) == (str(author.pk), 0)
    assert row["body"]["instance_data"]["name"] == "bound twice"


@pytest.mark.postgres
def test_connection_lost_before_commit__event_build_error_and_the_next_write_reconnects(
    outbox_rows,
):
    """The server ends the connection before COMMIT: the event cannot be read at flush
    (EventBuildError), nor can the transaction be rolled back, so the connection is
    closed. Nothing was committed, the error is the build's, and the next write opens a
    new connection and commits its row and its event."""
    conn = connections["default"]
    with pytest.raises(EventBuildError), transaction.atomic():
        models.Fragile.objects.create(name="lost")
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            [pid] = cursor.fetchone()
        with connections["other"].cursor() as cursor:
            # With a timeout, the call waits until that backend has exited.
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])
            assert cursor.fetchone() == (True,)
    models.Fragile.objects.create(name="next")
    assert list(models.Fragile.objects.values_list("name", flat=True)) == ["next"]
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows()] == ["next"]
