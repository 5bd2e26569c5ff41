"""Writes made outside the ORM reach a real replica (capture mode 'database').

Raw SQL INSERT, UPDATE and DELETE on the master, with our relay (`cqrs_relay`, which
turns the capture triggers' records into events before each drain) and our worker each
in a process of its own. Then ORM and raw writes mixed on the same rows from four
connections at once, drawn by hypothesis: whatever the interleaving, the replica ends
equal to the master, revisions included. On PostgreSQL and MariaDB (the SQLite pass
leaves it out: one writer at a time).
"""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_outbox.master import outside, triggers
from cqrs_outbox.models import CapturedChange
from tests.acceptance.replica import support
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.mysql]

SETTINGS = "tests.testproject.settings"
PKS = range(1, 7)


@pytest.fixture
def net(settings):
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS["master"],
                                                 "capture": "database"}}
    chosen = outside.models_in_database_mode()
    triggers.install(chosen)
    yield
    triggers.install(chosen, remove=True)


@pytest.fixture
def relay(net, worker_env, tmp_path):
    process = support.django(["cqrs_relay", "--poll-interval", "0.1"], SETTINGS,
                             {**worker_env, "CQRS_TEST_CAPTURE": "database"},
                             tmp_path / "relay.log")
    yield process
    process.close()


def _raw(sql, params=()):
    table = connection.ops.quote_name(master.Shelf._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def _master():
    return {s.pk: (s.name, s.size, s.cqrs_revision) for s in master.Shelf.objects.all()}


def _replica():
    return {s.pk: (s.name, s.size, s.cqrs_revision) for s in replica.ShelfRef.objects.all()}


def _converged():
    # Equal, with nothing left to capture: the master's state is final once its records
    # are taken (taking one raises the row's revision).
    if CapturedChange.objects.exists():
        return False
    return _replica() == _master()


def test_raw_insert_update_delete__reach_the_replica(broker, names, start_worker, relay):
    worker = start_worker()
    kept = master.Shelf.objects.create(name="kept", size=1)
    doomed = master.Shelf.objects.create(name="doomed")
    _raw("INSERT INTO {table} (id, name, size, cqrs_revision, cqrs_updated) "
         "VALUES (%s, 'raw', 5, 0, %s)", [doomed.pk + 50, "2026-01-01 00:00:00"])
    _raw("UPDATE {table} SET size = size + 10 WHERE id = %s", [kept.pk])
    _raw("DELETE FROM {table} WHERE id = %s", [doomed.pk])
    wait_until(_converged, what="the master's raw writes on the replica")
    state = _replica()
    assert state[kept.pk] == ("kept", 11, 1)
    assert state[doomed.pk + 50] == ("raw", 5, 1)
    assert doomed.pk not in state
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0


def _apply(op):
    kind, pk, size = op
    try:
        with transaction.atomic():
            if kind == "orm_save":
                row = master.Shelf.objects.filter(pk=pk).first()
                if row is None:
                    master.Shelf.objects.create(pk=pk, name=f"orm{pk}", size=size)
                else:
                    row.size = size
                    row.save()
            elif kind == "orm_update":
                master.Shelf.objects.filter(pk=pk).update(size=size)
            elif kind == "orm_delete":
                master.Shelf.objects.filter(pk=pk).delete()
            elif kind == "raw_insert":
                _raw("INSERT INTO {table} (id, name, size, cqrs_revision, cqrs_updated) "
                     "VALUES (%s, %s, %s, 0, %s)",
                     [pk, f"raw{pk}", size, "2026-01-01 00:00:00"])
            elif kind == "raw_update":
                _raw("UPDATE {table} SET size = %s, name = %s WHERE id = %s",
                     [size, f"raw{pk}", pk])
            elif kind == "raw_delete":
                _raw("DELETE FROM {table} WHERE id = %s", [pk])
            else:  # an ORM save and a raw write of another row in one transaction
                master.Shelf.objects.filter(pk=pk).update(size=size)
                _raw("UPDATE {table} SET size = %s WHERE id = %s", [size + 1, pk % 6 + 1])
    except DatabaseError:
        pass  # a duplicate pk, a deadlock: the transaction rolled back whole


def _writer(ops, barrier):
    try:
        barrier.wait()
        for op in ops:
            _apply(op)
    finally:
        connections.close_all()


KINDS = ["orm_save", "orm_update", "orm_delete", "raw_insert", "raw_update", "raw_delete",
         "mixed"]
OPS = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(list(PKS)),
                         st.integers(0, 99)), min_size=1, max_size=8)


def test_mixed_orm_and_raw_writes_from_four_connections__replica_equals_master(
        broker, names, start_worker, relay):
    worker = start_worker()

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(st.lists(OPS, min_size=4, max_size=4))
    def mixed(per_connection):
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=_writer, args=(ops, barrier))
                   for ops in per_connection]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            wait_until(_converged, what="the replica equal to the master", timeout=30)
        except AssertionError:
            from cqrs_outbox.models import OutboxEvent
            m, r = _master(), _replica()
            odd = [pk for pk in set(m) | set(r) if m.get(pk) != r.get(pk)]
            events = list(OutboxEvent.objects.filter(cqrs_id="shelf", instance_pk__in=[
                str(pk) for pk in odd]).order_by("id").values_list(
                "instance_pk", "signal_type", "revision", "status", "payload"))
            raise AssertionError(f"master {m} replica {r} events {events}") from None

    mixed()
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0
