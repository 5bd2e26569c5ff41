"""The database safety net: writes made outside the ORM still become events.

With CQRS['master']['capture'] = 'database', triggers record each row change made
without an outbox event in its transaction, and `outside.process()` (run by the relay,
the drain task and `cqrs_capture`) turns the records into SAVE and DELETE events with
the revision raised. ORM writes leave no record: their own events cover them.
"""

import io
import json
import logging
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import F

from cqrs_outbox.master import outside, triggers
from cqrs_outbox.models import CapturedChange
from tests.testproject.master import models

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]


@pytest.fixture
def net(settings):
    """Capture mode 'database' with the triggers installed, dropped afterwards."""
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS.get("master", {}),
                                                 "capture": "database"}}
    chosen = outside.models_in_database_mode()
    assert models.Shelf in chosen
    triggers.install(chosen)
    yield chosen
    triggers.install(chosen, remove=True)


def _raw(sql, params=()):
    table = connection.ops.quote_name(models.Shelf._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def _captured():
    return list(CapturedChange.objects.order_by("id").values_list("kind", "instance_pk"))


def _events(outbox_rows, since=0):
    return [(r["signal_type"], r["instance_pk"], r["revision"]) for r in outbox_rows()[since:]]


def test_raw_update__recorded_then_sent_with_the_revision_raised(net, outbox_rows):
    """An UPDATE in plain SQL leaves a record; the step sends the row as it now is, one
    revision higher, and the record is gone."""
    shelf = models.Shelf.objects.create(name="a", size=1)
    before = len(outbox_rows())
    _raw("UPDATE {table} SET size = 42 WHERE id = %s", [shelf.pk])
    assert _captured() == [("U", str(shelf.pk))]
    assert len(outbox_rows()) == before
    assert outside.process() == 1
    rows = outbox_rows()[before:]
    assert _events(outbox_rows, before) == [("SAVE", str(shelf.pk), 1)]
    assert rows[0]["body"]["instance_data"]["size"] == 42
    assert rows[0]["body"]["instance_data"]["cqrs_revision"] == 1
    shelf.refresh_from_db()
    assert shelf.cqrs_revision == 1
    assert _captured() == []


def test_raw_insert_and_delete__become_a_save_and_a_delete(net, outbox_rows):
    """A row inserted in SQL is sent as a SAVE; one deleted in SQL as a DELETE one past
    the revision it had, as an ORM delete is."""
    gone = models.Shelf.objects.create(name="old")
    models.Shelf.objects.filter(pk=gone.pk).update(size=3)  # revision 1, by the ORM
    before = len(outbox_rows())
    _raw("INSERT INTO {table} (id, name, size, cqrs_revision, cqrs_updated) "
         "VALUES (%s, 'raw', 5, 0, %s)", [gone.pk + 100, "2026-01-01 00:00:00"])
    _raw("DELETE FROM {table} WHERE id = %s", [gone.pk])
    assert _captured() == [("I", str(gone.pk + 100)), ("D", str(gone.pk))]
    assert outside.process() == 2
    assert _events(outbox_rows, before) == [
        ("SAVE", str(gone.pk + 100), 1), ("DELETE", str(gone.pk), 2)]
    assert _captured() == []


def test_orm_writes__one_event_each_and_no_record(net, outbox_rows):
    """save(), create(), update(), bulk calls and delete() write their own events and
    leave nothing for the step."""
    ann = models.Author.objects.create(name="ann")
    shelf = models.Shelf.objects.create(name="a", author=ann)
    shelf.size = 2
    shelf.save()
    with transaction.atomic():
        shelf.size = 3
        shelf.save()
        shelf.save()  # a second save in one transaction keeps its revision
    models.Shelf.objects.filter(pk=shelf.pk).update(size=F("size") + 1)
    ann.shelves.update(name="b")
    models.Shelf.shelves.bulk_create([models.Shelf(name="c")])
    shelf.size = 9
    models.Shelf.objects.bulk_update([shelf], ["size"])
    other = models.Shelf.objects.create(name="d")
    models.Shelf.objects.filter(pk=other.pk).delete()
    assert _captured() == []
    assert outside.process() == 0
    events = _events(outbox_rows)
    assert [rev for kind, pk, rev in events if pk == str(shelf.pk)] == [0, 1, 2, 3, 4, 5]
    assert [(kind, rev) for kind, pk, rev in events if pk == str(other.pk)] == [
        ("SAVE", 0), ("DELETE", 1)]
    assert len(events) == 6 + 2 + 2  # shelf, other, ann and the bulk-created row


def test_a_savepoint_rolled_back_after_update__leaves_no_event_and_no_record(net, outbox_rows):
    shelf = models.Shelf.objects.create(name="a")
    before = len(outbox_rows())
    with transaction.atomic():
        try:
            with transaction.atomic():
                models.Shelf.objects.filter(pk=shelf.pk).update(size=7)
                _raw("UPDATE {table} SET name = 'raw' WHERE id = %s", [shelf.pk])
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
    assert _captured() == []
    assert len(outbox_rows()) == before
    shelf.refresh_from_db()
    assert (shelf.size, shelf.name, shelf.cqrs_revision) == (0, "a", 0)


def test_raw_write_in_the_orms_transaction_of_another_row__is_recorded(net, outbox_rows):
    """An ORM event covers its own row only: a raw write of another row in the same
    transaction is still recorded."""
    a = models.Shelf.objects.create(name="a")
    b = models.Shelf.objects.create(name="b")
    with transaction.atomic():
        a.size = 1
        a.save()
        _raw("UPDATE {table} SET size = 2 WHERE id = %s", [b.pk])
    assert _captured() == [("U", str(b.pk))]


def test_deleted_outside_and_created_again__delete_then_save(net, outbox_rows):
    """A row deleted in SQL and created again under the same pk before the step runs gets
    the DELETE of its old life before the SAVE of the new one."""
    shelf = models.Shelf.objects.create(name="old")
    pk = shelf.pk
    before = len(outbox_rows())
    _raw("DELETE FROM {table} WHERE id = %s", [pk])
    models.Shelf.objects.create(pk=pk, name="new")
    assert _captured() == [("D", str(pk))]
    assert outside.process() == 1
    assert _events(outbox_rows, before) == [
        ("SAVE", str(pk), 0), ("DELETE", str(pk), 1), ("SAVE", str(pk), 2)]
    assert outbox_rows()[-1]["body"]["instance_data"]["name"] == "new"
    shelf.refresh_from_db()
    assert (shelf.name, shelf.cqrs_revision) == ("new", 2)


def test_deleted_outside_then_created_and_saved_again__the_save_rises_above_the_new_life(
        net, outbox_rows):
    """When the new life has already climbed past the old one's DELETE (three ORM saves
    before the step runs), the captured SAVE goes one above the newest revision the ORM
    sent, never back to the old life's: replicas would otherwise keep the ORM's state."""
    shelf = models.Shelf.objects.create(name="old")
    pk = shelf.pk
    _raw("DELETE FROM {table} WHERE id = %s", [pk])
    again = models.Shelf.objects.create(pk=pk, name="new")
    for size in (1, 2, 3):
        again.size = size
        again.save()
    before = len(outbox_rows())
    assert outside.process() == 1
    assert _events(outbox_rows, before) == [("DELETE", str(pk), 1), ("SAVE", str(pk), 4)]
    assert outbox_rows()[-1]["body"]["instance_data"]["size"] == 3
    again.refresh_from_db()
    assert again.cqrs_revision == 4


def test_more_records_than_a_batch__taken_a_batch_per_transaction(net, outbox_rows):
    """One step takes at most BATCH records (1,000), oldest first; the next takes the
    rest, and every row gets its event."""
    models.Shelf.objects.bulk_create([models.Shelf(name=str(i)) for i in range(outside.BATCH + 1)])
    _raw("UPDATE {table} SET size = 7")
    assert CapturedChange.objects.count() == outside.BATCH + 1
    before = len(outbox_rows())
    assert outside.process() == 1000
    assert CapturedChange.objects.count() == 1
    assert outside.process() == 1
    assert outside.process() == 0
    sent = outbox_rows()[before:]
    assert len({r["instance_pk"] for r in sent}) == outside.BATCH + 1
    assert {r["body"]["instance_data"]["size"] for r in sent} == {7}


def test_records_of_an_unknown_cqrs_id__dropped_with_an_error_the_rest_still_sent(
        net, outbox_rows, caplog):
    """A record no master model claims (a model renamed since its trigger was installed)
    is logged, naming its table, and dropped; the records after it in the same batch still
    become events."""
    shelf = models.Shelf.objects.create(name="a")
    CapturedChange.objects.create(cqrs_id="gone_model", table_name="old_table",
                                  instance_pk="1", kind="U")
    _raw("UPDATE {table} SET size = 5 WHERE id = %s", [shelf.pk])
    before = len(outbox_rows())
    with caplog.at_level(logging.ERROR, logger=outside.__name__):
        assert outside.process() == 2
    assert _events(outbox_rows, before) == [("SAVE", str(shelf.pk), 1)]
    assert _captured() == []
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "'gone_model'" in error.getMessage() and "old_table" in error.getMessage()


def test_a_second_step_while_one_holds_the_records__skips_them_instead_of_waiting(
        net, outbox_rows):
    """Two relays running the step at once: the second passes over the records the first
    has locked (SKIP LOCKED) instead of queueing behind it, and each record becomes one
    event. A lock wait would fail the step here after two seconds."""
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("the database has no SKIP LOCKED; its steps queue one behind another")
    shelf = models.Shelf.objects.create(name="a")
    _raw("UPDATE {table} SET size = 6 WHERE id = %s", [shelf.pk])
    held, release, errors = threading.Event(), threading.Event(), []

    def first_step():
        try:
            with transaction.atomic():
                assert len(list(CapturedChange.objects.select_for_update())) == 1
                held.set()
                release.wait(30)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            held.set()
            connections.close_all()

    postgres = connection.vendor == "postgresql"
    thread = threading.Thread(target=first_step)
    thread.start()
    try:
        assert held.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'" if postgres
                           else "SET SESSION innodb_lock_wait_timeout = 2")
        before = len(outbox_rows())
        assert outside.process() == 0
        assert len(outbox_rows()) == before
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:  # the connection outlives the test
            cursor.execute("SET lock_timeout = DEFAULT" if postgres
                           else "SET SESSION innodb_lock_wait_timeout = DEFAULT")
    assert errors == []
    assert outside.process() == 1
    assert _events(outbox_rows, before) == [("SAVE", str(shelf.pk), 1)]


def test_capture_off__turns_the_triggers_off(net, settings, outbox_rows):
    """Mode 'off' (django-cqrs's silence): after migrate the triggers are gone, raw writes
    leave no record and update() writes no event."""
    shelf = models.Shelf.objects.create(name="a")
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS["master"], "capture": "off"}}
    triggers.sync("default")
    before = len(outbox_rows())
    _raw("UPDATE {table} SET size = 5 WHERE id = %s", [shelf.pk])
    models.Shelf.objects.filter(pk=shelf.pk).update(size=6)
    assert _captured() == []
    assert outside.process() == 0
    assert len(outbox_rows()) == before


def test_cqrs_capture_command__sql_install_once(net, outbox_rows):
    out = io.StringIO()
    call_command("cqrs_capture", "--sql", stdout=out)
    assert models.Shelf._meta.db_table in out.getvalue()
    assert "TRIGGER" in out.getvalue()
    out = io.StringIO()
    call_command("cqrs_capture", "--install", stdout=out)
    assert "installed on" in out.getvalue()
    shelf = models.Shelf.objects.create(name="a")
    _raw("UPDATE {table} SET size = 8 WHERE id = %s", [shelf.pk])
    out = io.StringIO()
    call_command("cqrs_capture", "--once", stdout=out)
    assert "turned into events: 1" in out.getvalue()
    assert _events(outbox_rows)[-1] == ("SAVE", str(shelf.pk), 1)


def test_cqrs_capture_without_the_mode__says_which_setting(settings):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"CQRS\['master'\]\['capture'\] = 'database'"):
        call_command("cqrs_capture", "--once")


def test_step_counts_and_warns_once_per_table(net, caplog, monkeypatch):
    seen = []

    class Observer:
        def captured(self, cqrs_id, count):
            seen.append((cqrs_id, count))

    monkeypatch.setattr(outside, "_warned", {})
    shelf = models.Shelf.objects.create(name="a")
    for size in (1, 2):
        _raw("UPDATE {table} SET size = %s WHERE id = %s", [size, shelf.pk])
        outside.process(observer=Observer())
    assert seen == [("shelf", 1), ("shelf", 1)]
    warnings = [r for r in caplog.records if "outside the ORM" in r.getMessage()]
    assert len(warnings) == 1
    assert models.Shelf._meta.db_table in warnings[0].getMessage()


def test_the_warning_about_a_table__again_after_exactly_its_interval(net, caplog, monkeypatch):
    """A table's warning comes back once WARN_INTERVAL (60 s) has passed, not a moment
    before."""
    clock = [1000.0]
    monkeypatch.setattr(outside, "_warned", {})
    monkeypatch.setattr(outside.time, "monotonic", lambda: clock[0])
    shelf = models.Shelf.objects.create(name="a")
    warned = []
    for at in (1000.0, 1059.999, 1060.0, 1119.999):
        clock[0] = at
        caplog.clear()
        _raw("UPDATE {table} SET size = size + 1 WHERE id = %s", [shelf.pk])
        assert outside.process() == 1
        warned.append(any("outside the ORM" in r.getMessage() for r in caplog.records))
    assert warned == [True, False, True, False]


def test_save_of_an_instance_whose_row_was_deleted__inserts_it_again_as_a_new_life(
        outbox_rows):
    """Plain Django inserts a row that vanished since the instance was read; so does a
    master, at revision 0, instead of failing on its F() revision."""
    shelf = models.Shelf.objects.create(name="a")
    stale = models.Shelf.objects.get(pk=shelf.pk)
    stale.save()  # revision 1
    shelf.delete()
    stale.size = 4
    stale.save()
    stale.refresh_from_db()
    assert (stale.size, stale.cqrs_revision) == (4, 0)
    assert _events(outbox_rows)[-2:] == [("DELETE", str(stale.pk), 2),
                                         ("SAVE", str(stale.pk), 0)]


def test_relay_status__shows_the_records_waiting(net):
    shelf = models.Shelf.objects.create(name="a")
    _raw("UPDATE {table} SET size = 3 WHERE id = %s", [shelf.pk])
    _raw("UPDATE {table} SET size = 4 WHERE id = %s", [shelf.pk])
    out = io.StringIO()
    call_command("cqrs_relay", "--status", stdout=out)
    assert "captured outside the ORM, not yet events: 2" in out.getvalue()


def test_relay_turn__takes_the_records_before_it_drains(net, outbox_rows):
    """The relay built for cqrs_relay and the drain task runs the step each turn: a raw
    write becomes an event, which the same turn publishes."""
    from cqrs_outbox import drain
    from relay.publisher import StubPublisher

    shelf = models.Shelf.objects.create(name="a")
    _raw("UPDATE {table} SET size = 3 WHERE id = %s", [shelf.pk])
    relay = drain.build_relay("default")
    relay.publisher = StubPublisher()
    relay.run(once=True)
    assert _captured() == []
    sent = [(m.routing_key, json.loads(m.body)["instance_data"]["size"])
            for m in relay.publisher.sent_in_order]
    assert sent[-1] == ("shelf", 3)


def test_migrate_step__touches_only_tables_whose_triggers_change(net, settings):
    """After migrate, installed triggers are left alone (DDL takes a table lock every write
    waits for); switching the mode off drops them all."""
    from django.test.utils import CaptureQueriesContext

    names = set(triggers.trigger_names(models.Shelf, connection.alias))
    assert names <= triggers.existing()
    with CaptureQueriesContext(connection) as seen:
        triggers.sync("default")
    assert not [q["sql"] for q in seen.captured_queries if "TRIGGER" in q["sql"].upper()
                and ("CREATE" in q["sql"].upper() or "DROP" in q["sql"].upper())]
    assert names <= triggers.existing()
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS["master"], "capture": "orm"}}
    triggers.sync("default")
    assert triggers.existing() == set()


def test_statements_and_install__by_default_every_part_and_the_count_run():
    """`statements(models)` is the DDL that installs the models' triggers and the parts
    every table's triggers share; `install` runs it and answers how many statements ran,
    and with `remove=True` takes them all away again."""
    chosen = [models.Shelf]
    sql = triggers.statements(chosen)
    assert sql == triggers.statements(chosen, "default", remove=False, shared=True)
    shared = triggers.statements([], "default", remove=False, shared=True)
    # PostgreSQL shares nothing on install: its row index comes with each table's DDL.
    assert sql[len(sql) - len(shared):] == shared
    assert triggers.existing() == set()
    try:
        assert triggers.install(chosen) == len(sql)
        assert set(triggers.trigger_names(models.Shelf)) <= triggers.existing()
    finally:
        removed = triggers.install(chosen, remove=True)
    assert removed == len(triggers.statements(chosen, remove=True))
    assert triggers.existing() == set()


def _capture_mode(settings, mode):
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS.get("master", {}),
                                                 "capture": mode}}


def test_migrate_step__installs_the_triggers_a_table_in_mode_database_lacks(settings):
    """A model switched to capture mode 'database' gets its triggers at the next migrate,
    and the parts every table's triggers share with them."""
    _capture_mode(settings, "database")
    assert triggers.existing() == set()
    try:
        triggers.sync("default")
        assert set(triggers.trigger_names(models.Shelf)) <= triggers.existing()
    finally:
        triggers.install(outside.models_in_database_mode(), remove=True)
    assert triggers.existing() == set()


def test_migrate_step__in_mode_orm_with_no_triggers_runs_no_ddl(settings):
    """With every model in capture mode 'orm' and no trigger anywhere, a migrate leaves
    the tables alone: no DROP, however harmless, that every write would wait for."""
    from django.test.utils import CaptureQueriesContext

    _capture_mode(settings, "orm")
    assert triggers.existing() == set()
    with CaptureQueriesContext(connection) as seen:
        triggers.sync("default")
    assert not [q["sql"] for q in seen.captured_queries
                if q["sql"].upper().startswith(("CREATE", "DROP"))]


def test_migrate_step__drops_a_shared_part_left_without_any_table_trigger(settings):
    """Mode 'orm' everywhere, and the row triggers gone but the part they shared left
    (the outbox's clearing trigger, on SQLite and MySQL): the migrate drops it too."""
    _capture_mode(settings, "database")
    chosen = outside.models_in_database_mode()
    triggers.install(chosen)
    triggers.install(chosen, remove=True, shared=False)  # the tables' own triggers only
    from cqrs_outbox import store

    assert triggers.existing() == {store.dialect_of(connection).CLEAR_TRIGGER} - {None}
    _capture_mode(settings, "orm")
    try:
        triggers.sync("default")
        assert triggers.existing() == set()
    finally:
        triggers.install(chosen, remove=True)
