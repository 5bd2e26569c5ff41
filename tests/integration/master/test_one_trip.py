"""A master save outside any transaction: BEGIN rides on its first statement, COMMIT on
the event INSERT (cqrs_outbox.master.onetrip), and the save keeps every promise of one
made in `atomic()`: row and event together or neither, errors roll back, savepoints and
on_commit callbacks behave, and the connection is back in autocommit afterwards.

PostgreSQL only (the one dialect that allows it); run on psycopg 3 and psycopg2 by the
matrix. test_round_trips.py counts the requests.
"""

from __future__ import annotations

import importlib
import threading

import pytest
from django.db import IntegrityError, connections, transaction
from django.db.models.signals import post_save, pre_save

from cqrs_outbox import store
from cqrs_outbox.master import onetrip
from tests.support.pgbouncer import PgBouncer
from tests.testproject.master import models

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only():
    if connections["default"].vendor != "postgresql":
        pytest.skip("the one-trip transaction is PostgreSQL's")


@pytest.fixture
def handler():
    """Connect a receiver to a master model's signal for one test."""
    connected = []

    def connect(signal, func, sender):
        signal.connect(func, sender=sender, weak=False)
        connected.append((signal, func, sender))

    yield connect
    for signal, func, sender in connected:
        signal.disconnect(func, sender=sender)


def _idle_in_autocommit() -> bool:
    conn = connections["default"]
    raw = conn.connection
    left_behind = [name for name in ("_set_autocommit", "_commit", "_rollback")
                   if name in conn.__dict__]
    return (raw.info.transaction_status == 0 and raw.autocommit and conn.get_autocommit()
            and not conn.in_atomic_block and not conn.execute_wrappers
            and not left_behind and not onetrip.active(conn))


def _names(outbox_rows) -> list[str]:
    return [r["body"]["instance_data"]["name"] for r in outbox_rows()]


def test_create__row_and_event_commit_and_the_connection_is_back_in_autocommit(outbox_rows):
    """The row and its event are committed (another connection sees both), and nothing of
    the one-trip block is left on the connection."""
    author = models.Author.objects.create(name="Ann")
    assert _idle_in_autocommit()
    elsewhere = store.connect(store.url_of(connections["default"]))  # a session of its own
    try:
        assert elsewhere.fetchall(
            f"SELECT count(*) FROM {models.Author._meta.db_table} WHERE id = %s",
            [author.pk]) == [(1,)]
    finally:
        elsewhere.close()
    [row] = outbox_rows()
    assert (row["instance_pk"], row["revision"]) == (str(author.pk), 0)


def test_update__revision_read_back_and_event_committed(outbox_rows):
    """An UPDATE (with its F() revision) is the first statement: the count of rows it
    changed is read past the BEGIN, or Django would insert instead."""
    author = models.Author.objects.create(name="Ann")
    author.name = "Bea"
    author.save()
    assert models.Author.objects.count() == 1
    assert [(r["revision"], r["body"]["instance_data"]["name"]) for r in outbox_rows()] == [
        (0, "Ann"), (1, "Bea")]
    assert _idle_in_autocommit()


def test_insert_failing__nothing_committed_and_the_next_save_works(outbox_rows):
    """The INSERT fails after the BEGIN it carried: the transaction is rolled back, not
    left open (the next save would otherwise join it)."""
    first = models.Author.objects.create(name="Ann")
    with pytest.raises(IntegrityError):
        models.Author.objects.create(pk=first.pk, name="duplicate")
    assert _idle_in_autocommit()
    models.Author.objects.create(name="Cid")
    assert _names(outbox_rows) == ["Ann", "Cid"]
    assert sorted(models.Author.objects.values_list("name", flat=True)) == ["Ann", "Cid"]


def test_deferred_constraint_failing_at_commit__neither_row_nor_event(outbox_rows):
    """The foreign key is checked at COMMIT, which travels with the event INSERT: both
    fail together and the error reaches the caller."""
    with pytest.raises(IntegrityError):
        models.Tracked.objects.create(name="orphan", author_id=987654)
    assert _idle_in_autocommit()
    assert models.Tracked.objects.count() == 0 and outbox_rows() == []
    models.Tracked.objects.create(name="next")
    assert _names(outbox_rows) == ["next"]


def test_handler_raising_after_the_insert__row_and_event_rolled_back(outbox_rows, handler):
    """A post_save receiver fails after the INSERT ran: the save's transaction rolls back."""
    def fail(sender, instance, **kwargs):
        raise RuntimeError("receiver failed")

    handler(post_save, fail, models.Author)
    with pytest.raises(RuntimeError, match="receiver failed"):
        models.Author.objects.create(name="lost")
    assert _idle_in_autocommit()
    assert models.Author.objects.count() == 0 and outbox_rows() == []


def test_query_in_pre_save__it_opens_the_transaction_and_reads_its_rows(outbox_rows, handler):
    """A pre_save receiver's SELECT is the first statement: it carries the BEGIN, its rows
    are still read, and the save joins the same transaction."""
    seen = []

    def count(sender, instance, **kwargs):
        seen.append(models.Author.objects.filter(name=instance.name).count())
        seen.append(connections["default"].connection.info.transaction_status)

    models.Author.objects.create(name="Ann")
    handler(pre_save, count, models.Author)
    models.Author.objects.create(name="Ann")
    assert seen == [1, 2]  # one row named Ann so far, read inside the open transaction
    assert _names(outbox_rows) == ["Ann", "Ann"]


def test_savepoint_in_a_receiver__rolled_back_alone(outbox_rows, handler):
    """A receiver's own atomic() is a savepoint of the save's transaction: rolling it back
    keeps the save and its event, and drops only what the receiver wrote."""
    def side_write(sender, instance, created, **kwargs):
        if instance.name != "Ann":
            return
        try:
            with transaction.atomic():
                models.Author.objects.create(name="side")
                raise RuntimeError("undo the side write")
        except RuntimeError:
            pass
        models.Author.objects.create(name="kept")

    handler(post_save, side_write, models.Author)
    models.Author.objects.create(name="Ann")
    assert _idle_in_autocommit()
    assert sorted(models.Author.objects.values_list("name", flat=True)) == ["Ann", "kept"]
    assert sorted(_names(outbox_rows)) == ["Ann", "kept"]


def test_on_commit_callback__runs_after_the_commit_in_autocommit(outbox_rows, handler):
    """An on_commit callback registered during the save runs once it committed, on a
    connection back in autocommit: its own write commits by itself."""
    ran = []

    def register(sender, instance, created, **kwargs):
        if instance.name == "Ann":
            transaction.on_commit(lambda: ran.append(_idle_in_autocommit())
                                  or models.Author.objects.create(name="after"))

    handler(post_save, register, models.Author)
    models.Author.objects.create(name="Ann")
    assert ran == [True]
    assert _names(outbox_rows) == ["Ann", "after"]
    assert _idle_in_autocommit()


def _note_one_trip(handler) -> list[bool]:
    seen: list[bool] = []

    def note(sender, instance, **kwargs):
        seen.append(onetrip.active(connections["default"]))

    handler(post_save, note, models.Author)
    return seen


def test_outside_atomic__the_save_runs_in_a_one_trip_transaction(outbox_rows, handler):
    """The bare save is the one-trip kind while it runs, and only then, also as the first
    statement of a new connection (whose setup switches autocommit on)."""
    seen = _note_one_trip(handler)
    connections["default"].close()
    models.Author.objects.create(name="Ann")
    assert seen == [True]
    assert not onetrip.active(connections["default"])


def test_inside_atomic__the_usual_transaction(outbox_rows, handler):
    """Inside the caller's atomic() the save is part of the caller's transaction, which
    the driver opens as usual: rolled back, it takes the save with it."""
    seen = _note_one_trip(handler)
    with pytest.raises(RuntimeError), transaction.atomic():
        models.Author.objects.create(name="lost")
        raise RuntimeError("roll back")
    assert seen == [False]
    assert models.Author.objects.count() == 0 and outbox_rows() == []
    assert _idle_in_autocommit()


def test_server_side_binding__a_transaction_the_usual_way(outbox_rows, handler):
    """psycopg 3's server-side binding cannot send two statements in one query, so the
    save opens its transaction as atomic() does, and commits its row and event."""
    conn = connections["default"]
    if conn.Database.__name__ != "psycopg":
        pytest.skip("server-side binding is psycopg 3's")
    seen = _note_one_trip(handler)
    options = conn.settings_dict["OPTIONS"]
    conn.close()
    options["server_side_binding"] = True
    try:
        models.Author.objects.create(name="bound")
    finally:
        options.pop("server_side_binding")
        conn.close()
    assert seen == [False]
    assert _names(outbox_rows) == ["bound"]
    assert list(models.Author.objects.values_list("name", flat=True)) == ["bound"]


def test_connection_closed_by_a_receiver__nothing_committed_and_the_next_save_reconnects(
    outbox_rows, handler,
):
    """The connection is lost in the middle of the save: the server drops the open
    transaction, the caller gets an error, and the next save works on a new connection."""
    def close(sender, instance, **kwargs):
        if instance.name == "lost":
            connections["default"].connection.close()

    handler(post_save, close, models.Author)
    with pytest.raises(Exception):  # noqa: B017,PT011 - the driver's error for a closed connection
        models.Author.objects.create(name="lost")
    conn = connections["default"]
    assert not [name for name in ("_set_autocommit", "_commit", "_rollback")
                if name in conn.__dict__]
    assert not conn.execute_wrappers and not onetrip.active(conn)
    models.Author.objects.create(name="next")
    assert _names(outbox_rows) == ["next"]
    assert list(models.Author.objects.values_list("name", flat=True)) == ["next"]


@pytest.fixture
def bouncer():
    """Point Django's default connection at a PgBouncer in transaction pooling mode with
    one server connection, for the test."""
    missing = PgBouncer.missing()
    if missing:
        pytest.skip(missing)
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    with PgBouncer(saved["HOST"] or "127.0.0.1", int(saved["PORT"] or 5432)) as pooler:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(pooler.port))
        try:
            yield pooler
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


def _server_in_use(pooler: PgBouncer) -> int:
    return pooler.pools()[connections["default"].settings_dict["NAME"]]["sv_active"]


def test_behind_pgbouncer_transaction_pooling__each_save_holds_the_server_only_while_it_runs(
    bouncer, outbox_rows, handler,
):
    """Behind PgBouncer in transaction mode (one server connection): a save's transaction
    holds the server connection from its first statement, the BEGIN travelling with it,
    and hands it back at the COMMIT or ROLLBACK, on success and on each kind of failure;
    a client on another connection then gets it."""
    during = []

    def note(sender, instance, **kwargs):
        during.append(_server_in_use(bouncer))

    handler(post_save, note, models.Author)
    first = models.Author.objects.create(name="Ann")
    after_success = _server_in_use(bouncer)
    with pytest.raises(IntegrityError):
        models.Author.objects.create(pk=first.pk, name="duplicate")
    after_insert_error = _server_in_use(bouncer)
    with pytest.raises(IntegrityError):
        models.Tracked.objects.create(name="orphan", author_id=987654)
    after_commit_error = _server_in_use(bouncer)

    def other_client():
        try:
            models.Author.objects.create(name="from another client")
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_client)
    thread.start()
    thread.join(30)
    assert during == [1, 1]  # pinned while the save ran
    assert (after_success, after_insert_error, after_commit_error) == (0, 0, 0)
    assert not thread.is_alive()
    assert sorted(models.Author.objects.values_list("name", flat=True)) == [
        "Ann", "from another client"]
    assert sorted(_names(outbox_rows)) == ["Ann", "from another client"]
    assert models.Tracked.objects.count() == 0


def test_save_with_no_event__its_row_is_committed_all_the_same(outbox_rows):
    """A master that publishes nothing (CQRS_PRODUCE = False) has no event INSERT to
    carry the COMMIT: the block sends it alone, and the row is there for everyone."""
    models.Silent.objects.create(name="quiet")
    assert _idle_in_autocommit()
    elsewhere = store.connect(store.url_of(connections["default"]))
    try:
        assert elsewhere.fetchall(
            f"SELECT name FROM {models.Silent._meta.db_table}") == [("quiet",)]
    finally:
        elsewhere.close()
    assert outbox_rows() == []


def test_executemany_first__begin_goes_alone_and_every_row_joins_the_transaction(
    outbox_rows, handler,
):
    """A receiver's executemany() is the first statement: it cannot carry the BEGIN, which
    is sent before it, so its rows roll back with the save."""
    table = models.Plain._meta.db_table

    def insert_many(sender, instance, **kwargs):
        with connections["default"].cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (name, cqrs_revision, cqrs_updated) VALUES (%s, 0, now())",
                [("x",), ("y",)])

    def fail(sender, instance, **kwargs):
        raise RuntimeError("receiver failed")

    handler(pre_save, insert_many, models.Author)
    handler(post_save, fail, models.Author)
    with pytest.raises(RuntimeError, match="receiver failed"):
        models.Author.objects.create(name="lost")
    assert _idle_in_autocommit()
    assert models.Plain.objects.count() == 0 and models.Author.objects.count() == 0
    assert outbox_rows() == []


def test_composed_query_first__begin_goes_alone(outbox_rows, handler):
    """A receiver's first statement is the driver's composed SQL object, not a string: the
    BEGIN goes before it instead of being glued on, and its result is read as usual."""
    composed = importlib.import_module(connections["default"].Database.__name__ + ".sql")
    seen = []

    def select(sender, instance, **kwargs):
        with connections["default"].cursor() as cursor:
            cursor.execute(composed.SQL("SELECT {}").format(composed.Literal(7)))
            seen.append(cursor.fetchone())

    handler(pre_save, select, models.Author)
    models.Author.objects.create(name="Ann")
    assert seen == [(7,)]
    assert _names(outbox_rows) == ["Ann"]
    assert _idle_in_autocommit()


def test_statements_sent__one_begin_glued_to_the_first_and_results_handed_back(
    outbox_rows, handler,
):
    """Seen from below the block's wrapper: of a save's statements only the first carries
    "BEGIN; ", and a receiver's execute() returns what the driver's does outside a save."""
    sent: list[str] = []

    def observe(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connections["default"].cursor() as cursor:
        outside = cursor.execute("SELECT 1")
    returned = []

    def select(sender, instance, **kwargs):
        # Inside the block's wrapper, so it sees what goes to the driver.
        connections["default"].execute_wrappers.append(observe)
        with connections["default"].cursor() as cursor:
            returned.append(cursor.execute("SELECT 2"))

    handler(pre_save, select, models.Author)
    try:
        models.Author.objects.create(name="Ann")
    finally:
        connections["default"].execute_wrappers.remove(observe)
    assert len(sent) >= 3  # the SELECT, the INSERT, the event INSERT with its COMMIT
    assert sent[0] == "BEGIN; SELECT 2"
    assert not [sql for sql in sent[1:] if "BEGIN" in sql]
    assert sent[-1].rstrip().endswith("; COMMIT")
    assert [type(r) for r in returned] == [type(outside)]
    assert _names(outbox_rows) == ["Ann"]


def test_block_failing_to_open__the_connection_is_left_as_it_was(monkeypatch):
    """If atomic() itself cannot start (here made to fail), nothing of the block stays
    on the connection: the next save is an ordinary one-trip save."""
    conn = connections["default"]
    real_enter = transaction.Atomic.__enter__

    def refuse(self):
        raise RuntimeError("cannot open")

    monkeypatch.setattr(transaction.Atomic, "__enter__", refuse)
    with pytest.raises(RuntimeError, match="cannot open"):
        models.Author.objects.create(name="never")
    monkeypatch.setattr(transaction.Atomic, "__enter__", real_enter)
    assert not [name for name in ("_set_autocommit", "_commit", "_rollback")
                if name in conn.__dict__]
    assert not conn.execute_wrappers and not onetrip.active(conn)
    models.Author.objects.create(name="next")
    assert list(models.Author.objects.values_list("name", flat=True)) == ["next"]


def test_django_closing_the_connection_in_the_block__nothing_of_it_stays_behind(
    outbox_rows, handler,
):
    """A receiver closes the connection through Django inside the save: Django then ends
    the block quietly, without a rollback or switching autocommit back on, as it does
    for any atomic(); the row is gone with the connection. The block still takes its
    methods and its wrapper off the connection, and the next save commits as usual."""
    def close(sender, instance, **kwargs):
        if instance.name == "lost":
            connections["default"].close()

    handler(post_save, close, models.Author)
    models.Author.objects.create(name="lost")
    conn = connections["default"]
    assert not [name for name in ("_set_autocommit", "_commit", "_rollback")
                if name in conn.__dict__]
    assert not conn.execute_wrappers and not onetrip.active(conn)
    models.Author.objects.create(name="next")
    assert _names(outbox_rows) == ["next"]
    assert list(models.Author.objects.values_list("name", flat=True)) == ["next"]
