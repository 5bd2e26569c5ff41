"""The replica API with django-cqrs's names, called directly (as cqrs_bulk_load does)."""

import pytest

from cqrs_outbox.models import Tombstone
from relay.exceptions import BadMessage
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


def test_manager__maps_and_checks_data_as_the_consumer_does():
    row = models.TrackedRef.cqrs.save_instance(
        ev.save("tracked", 1, 0, name="n", status="s")["instance_data"]
    )
    assert (row.title, row.state) == ("n", "s")
    with pytest.raises(BadMessage, match="instance_data.status is missing"):
        models.TrackedRef.cqrs.save_instance(ev.save("tracked", 2, 0, name="n")["instance_data"])


def test_foreign_keys__given_by_id_through_the_handlers():
    row = models.AllFieldsRef.cqrs_save(_data(1, 0, author=5))
    assert row.author_id == 5


def test_retry_policy__follows_the_replica_settings(settings):
    settings.CQRS = {**settings.CQRS, "replica": {"CQRS_MAX_RETRIES": 2, "CQRS_RETRY_DELAY": 7}}
    assert models.AuthorRef.should_retry_cqrs(1) and not models.AuthorRef.should_retry_cqrs(2)
    assert models.AuthorRef.get_cqrs_retry_delay(0) == 7
    settings.CQRS = {**settings.CQRS, "replica": {"CQRS_MAX_RETRIES": None}}
    assert models.AuthorRef.should_retry_cqrs(10**6)
