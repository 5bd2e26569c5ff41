"""The replica API with django-cqrs's names, called directly (as cqrs_bulk_load does)."""

import logging

import pytest
from django.db import transaction

from cqrs_outbox.models import Tombstone
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db


def _data(pk, revision, **fields):
    return ev.save("author", pk, revision, **fields)["instance_data"]


def test_cqrs_save__creates_updates_and_ignores_stale_data():
    created = models.AuthorRef.cqrs_save(_data(1, 0, name="a"))
    assert (created.pk, created.name, created.cqrs_revision) == (1, "a", 0)
    updated = models.AuthorRef.cqrs_save(_data(1, 2, name="c"), previous_data={"name": "a"})
    assert (updated.name, updated.cqrs_revision) == ("c", 2)
    stale = models.AuthorRef.cqrs_save(_data(1, 1, name="b"))
    assert (stale.name, stale.cqrs_revision) == ("c", 2)  # the row as it stands
    assert models.AuthorRef.cqrs_save(_data(1, 2, name="truth"), sync=True).name == "truth"


def test_cqrs_delete__deletes_and_leaves_a_tombstone():
    models.AuthorRef.cqrs_save(_data(1, 0, name="a"))
    assert models.AuthorRef.cqrs_delete(ev.delete("author", 1, 1)["instance_data"]) is True
    assert not models.AuthorRef.objects.exists()
    assert Tombstone.objects.get().revision == 1
    assert models.AuthorRef.cqrs.save_instance(_data(1, 0, name="a")) is None  # tombstoned


def test_manager__maps_and_checks_data_as_the_consumer_does(caplog):
    row = models.TrackedRef.cqrs.save_instance(
        ev.save("tracked", 1, 0, name="n", status="s")["instance_data"]
    )
    assert (row.title, row.state) == ("n", "s")
    assert models.TrackedRef.cqrs.save_instance(
        ev.save("tracked", 2, 0, name="n")["instance_data"]) is None
    assert _errors(caplog) == [
        "Bad master-replica mapping for status (tracked). instance_data.status is missing "
        "(CQRS_MAPPING of TrackedRef)"
    ]


def _errors(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def _lines(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name.startswith("cqrs_outbox")]


BAD_DATA = {
    "no-pk": ({"name": "a", "cqrs_revision": 0, "cqrs_updated": ev.UPDATED},
              "instance_data.id (the primary key) is missing"),
    "no-required-field": (_data(1, 0), "instance_data lacks name, required by AuthorRef"),
    "wrong-type": ({**_data(1, 0, name="a"), "id": "one"}, "instance_data.id"),
    "no-revision": ({"id": 1, "name": "a", "cqrs_updated": ev.UPDATED},
                    "instance_data.cqrs_revision is missing"),
    "negative-revision": (_data(1, -1, name="a"), "cqrs_revision must be an integer >= 0"),
    "pk-out-of-range": (_data(2**70, 0, name="a"), "out of range for column 'id'"),
    "string-too-long": (_data(1, 0, name="x" * 101), "column 'name' holds at most 100"),
}


# django-cqrs's sentence for each case: what is missing, or the write that would fail.
SAID = {
    "no-pk": "CQRS PK is not provided in data (author). ",
    "no-required-field": "Not all required CQRS fields are provided in data (author). ",
    "wrong-type": "CQRS service exception ",  # django-cqrs's row lookup raises
    "no-revision": "CQRS sync fields are not provided in data (author). ",
    "negative-revision": "CQRS create error: pk = 1 (author). ",
    "pk-out-of-range": f"CQRS create error: pk = {2**70} (author). ",
    "string-too-long": "CQRS create error: pk = 1 (author). ",
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_cqrs_save__bad_data_logs_an_error_and_returns_none_as_django_cqrs(case, caplog):
    master_data, reason = BAD_DATA[case]
    assert models.AuthorRef.cqrs_save(master_data) is None
    assert models.AuthorRef.cqrs.save_instance(master_data) is None
    errors = _errors(caplog)
    assert len(errors) == 2 and reason in errors[0], errors
    assert errors[0].startswith(SAID[case])
    assert not models.AuthorRef.objects.exists()


def test_cqrs_delete__bad_data_logs_an_error_and_returns_false_as_django_cqrs(caplog):
    assert models.AuthorRef.cqrs_delete({"cqrs_revision": 1, "cqrs_updated": ev.UPDATED}) is False
    assert models.AuthorRef.cqrs_delete(ev.delete("author", "x", 1)["instance_data"]) is False
    errors = _errors(caplog)
    assert "instance_data.id (the deleted primary key) is missing" in errors[0]
    assert "instance_data.id" in errors[1]
    assert not Tombstone.objects.exists()


def test_cqrs_create__database_refusal_logs_create_error_and_returns_none(caplog):
    with transaction.atomic():  # the caller's transaction survives the refusal
        created = models.FilteredRef.cqrs_save(
            ev.save("filtered", 1, 0, name="x" * 150)["instance_data"])
        assert created is None
        assert models.FilteredRef.objects.count() == 0  # still usable
    [error] = _errors(caplog)
    assert error.startswith("CQRS create error: pk = 1 (filtered). ")
    assert "\n" not in error


def test_cqrs_update__database_refusal_logs_update_error_and_returns_none(caplog):
    models.FilteredRef.cqrs_save(ev.save("filtered", 1, 0, name="short")["instance_data"])
    instance = models.FilteredRef.objects.get()
    mapped = ev.save("filtered", 1, 1, name="y" * 150)["instance_data"]
    assert models.FilteredRef.cqrs.update_instance(instance, mapped) is None
    [error] = _errors(caplog)
    assert error.startswith("CQRS update error: pk = 1, cqrs_revision = 1 (filtered). ")
    assert models.FilteredRef.objects.get().shout == "SHORT"


def test_update_instance__logs_duplicates_stale_and_lost_revisions_as_django_cqrs(caplog):
    models.AuthorRef.cqrs_save(_data(1, 0, name="a"))
    caplog.clear()
    assert models.AuthorRef.cqrs_save(_data(1, 0, name="dup")).name == "a"
    assert _lines(caplog) == [
        ("ERROR", "Received duplicate CQRS data: pk = 1, cqrs_revision = 0 (author)."),
        ("WARNING", "CQRS potential creation race condition: pk = 1 (author)."),
    ]
    caplog.clear()
    assert models.AuthorRef.cqrs_save(_data(1, 3, name="b")).name == "b"  # 1 and 2 never came
    assert _lines(caplog) == [
        ("WARNING", "Lost or filtered out 2 CQRS packages: pk = 1, cqrs_revision = 3 (author)"),
    ]
    caplog.clear()
    assert models.AuthorRef.cqrs_save(_data(1, 2, name="old")).name == "b"
    assert _lines(caplog) == [
        ("ERROR", "Wrong CQRS sync order: pk = 1, cqrs_revision = new 2 / existing 3 (author)."),
    ]
    caplog.clear()
    assert models.AuthorRef.cqrs_save(_data(1, 4, name="c")).name == "c"  # the next: silent
    assert _lines(caplog) == []


def test_foreign_keys__given_by_id_through_the_handlers():
    row = models.AllFieldsRef.cqrs_save(_data(1, 0, author=5))
    assert row.author_id == 5


def test_retry_policy__follows_the_replica_settings(settings):
    settings.CQRS = {**settings.CQRS, "replica": {"CQRS_MAX_RETRIES": 2, "CQRS_RETRY_DELAY": 7}}
    assert models.AuthorRef.should_retry_cqrs(1) and not models.AuthorRef.should_retry_cqrs(2)
    assert models.AuthorRef.get_cqrs_retry_delay(0) == 7
    settings.CQRS = {**settings.CQRS, "replica": {"CQRS_MAX_RETRIES": None}}
    assert models.AuthorRef.should_retry_cqrs(10**6)


def test_create_instance__value_of_the_wrong_type_logs_and_returns_none(caplog):
    mapped = {"id": "one", "name": "a", "cqrs_revision": 0, "cqrs_updated": ev.UPDATED}
    assert models.AuthorRef.cqrs.create_instance(mapped) is None
    [error] = _errors(caplog)
    assert error.startswith("CQRS create error: pk = one (author). ")
    assert "expected a number but got 'one'" in error
