"""Master saves write their events into the outbox, in the caller's transaction."""

import datetime
import decimal
import json
import uuid
from unittest import mock

import pytest
from django.db import transaction

from cqrs_outbox.core import contract, wire
from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def test_create__writes_one_save_event_with_the_exact_body(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    [row] = outbox_rows()
    assert row["signal_type"] == "SAVE"
    assert row["cqrs_id"] == "author"
    assert row["instance_pk"] == str(author.pk)
    assert row["revision"] == 0
    assert row["status"] == "pending"
    assert row["routing_key"] == "author"
    assert row["partition"] == contract.partition_for("author", author.pk)
    body = row["body"]
    assert set(body) == set(wire.ENVELOPE_KEYS)
    assert body["instance_data"] == {
        "id": author.pk,
        "name": "Ann",
        "cqrs_revision": 0,
        "cqrs_updated": str(author.cqrs_updated),
    }
    assert body["instance_pk"] == author.pk
    assert body["retries"] == 0
    assert body["previous_data"] is None


def test_update__increments_revision_and_writes_the_new_state(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    author.name = "Bob"
    author.save()
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Bob"
    assert rows[1]["body"]["instance_data"]["cqrs_revision"] == 1


def test_rollback__leaves_no_event(outbox_rows):
    with pytest.raises(RuntimeError), transaction.atomic():
        models.Author.objects.create(name="Ann")
        raise RuntimeError("boom")
    assert outbox_rows() == []
    assert models.Author.objects.count() == 0


def test_savepoint_rollback__takes_its_events_and_bookkeeping(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        try:
            with transaction.atomic():
                author.name = "Inner"
                author.save()
                raise RuntimeError("inner fails")
        except RuntimeError:
            pass
        author.refresh_from_db()
        author.name = "Outer"
        author.save()
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Outer"
    author.refresh_from_db()
    assert author.cqrs_revision == 1


def test_two_saves_in_one_transaction__one_event_with_the_final_state(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    with transaction.atomic():
        author.name = "First"
        author.save()
        other_copy = models.Author.objects.get(pk=author.pk)
        other_copy.name = "Final"
        other_copy.save()
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Final"
    assert rows[1]["body"]["instance_data"]["cqrs_revision"] == 1


def test_create_and_update_in_one_transaction__one_event(outbox_rows):
    with transaction.atomic():
        author = models.Author.objects.create(name="Ann")
        author.name = "Final"
        author.save()
    [row] = outbox_rows()
    assert row["body"]["instance_data"]["name"] == "Final"
    assert row["revision"] == 0


def test_second_database_alias__event_goes_to_the_same_alias(outbox_rows):
    author = models.Author(name="Elsewhere")
    author.save(using="other")
    assert outbox_rows("default") == []
    [row] = outbox_rows("other")
    assert row["body"]["instance_data"]["name"] == "Elsewhere"


def test_second_alias_rollback__leaves_no_event_on_either(outbox_rows):
    with pytest.raises(RuntimeError), transaction.atomic(using="other"):
        models.Author(name="Elsewhere").save(using="other")
        raise RuntimeError("boom")
    assert outbox_rows("default") == [] and outbox_rows("other") == []


def test_bulk_create__one_event_per_instance(outbox_rows):
    created = models.Author.cqrs.bulk_create([models.Author(name=f"a{i}") for i in range(5)])
    rows = outbox_rows()
    assert [r["instance_pk"] for r in rows] == [str(a.pk) for a in created]
    assert {r["body"]["instance_data"]["name"] for r in rows} == {f"a{i}" for i in range(5)}


def test_bulk_update__increments_revisions_and_writes_events(outbox_rows):
    authors = models.Author.cqrs.bulk_create([models.Author(name=f"a{i}") for i in range(3)])
    OutboxEvent.objects.all().delete()
    updated = models.Author.cqrs.bulk_update(models.Author.objects.filter(name="a1"), name="b")
    assert updated == 1
    [row] = outbox_rows()
    assert row["instance_pk"] == str(authors[1].pk)
    assert row["revision"] == 1
    assert row["body"]["instance_data"]["name"] == "b"


def test_delete__writes_delete_event_with_next_revision(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    stale = models.Author.objects.get(pk=author.pk)
    author.name = "Newer"
    author.save()  # revision 1, while `stale` still says 0
    pk = author.pk
    stale.delete()
    row = outbox_rows()[-1]
    assert row["signal_type"] == "DELETE"
    assert row["revision"] == 2
    data = row["body"]["instance_data"]
    assert data["id"] == pk and data["cqrs_revision"] == 2
    assert set(data) == {"id", "cqrs_revision", "cqrs_updated"}


def test_queryset_delete__writes_delete_events(outbox_rows):
    models.Author.cqrs.bulk_create([models.Author(name=f"a{i}") for i in range(3)])
    models.Author.objects.filter(name__in=["a0", "a2"]).delete()
    deletes = [r for r in outbox_rows() if r["signal_type"] == "DELETE"]
    assert sorted(r["body"]["instance_data"]["cqrs_revision"] for r in deletes) == [1, 1]


def test_delete__carries_custom_delete_data(outbox_rows):
    obj = models.WithDeleteData.objects.create(name="x")
    obj.delete()
    assert outbox_rows()[-1]["body"]["instance_data"]["custom"] == {"name": "x"}


def test_update_fields_without_revision__writes_no_event(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    author.name = "Quiet"
    author.save(update_fields=["name"])
    assert len(outbox_rows()) == 1
    author.refresh_from_db()
    assert author.cqrs_revision == 0


def test_update_fields_with_update_cqrs_fields__writes_event(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    author.name = "Loud"
    author.save(update_fields=["name"], update_cqrs_fields=True)
    rows = outbox_rows()
    assert [r["revision"] for r in rows] == [0, 1]
    assert rows[1]["body"]["instance_data"]["name"] == "Loud"


@pytest.mark.parametrize("explicit", [None, False])
def test_update_fields_with_the_auto_update_setting__writes_event_unless_the_save_says_not(
    outbox_rows, settings, explicit,
):
    # django-cqrs's CQRS['master']['CQRS_AUTO_UPDATE_FIELDS'] is the default of each
    # save's update_cqrs_fields.
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS.get("master", {}),
                                                "CQRS_AUTO_UPDATE_FIELDS": True}}
    author = models.Author.objects.create(name="Ann")
    author.name = "Loud"
    kwargs = {} if explicit is None else {"update_cqrs_fields": explicit}
    author.save(update_fields=["name"], **kwargs)
    author.refresh_from_db()
    assert author.cqrs_revision == (1 if explicit is None else 0)
    assert [r["revision"] for r in outbox_rows()] == ([0, 1] if explicit is None else [0])


def test_is_sync_instance_false__counts_revision_but_writes_no_event(outbox_rows):
    obj = models.Filtered.objects.create(name="ab")
    obj.name = "xy"
    obj.save()
    assert outbox_rows() == []
    obj.refresh_from_db()
    assert obj.cqrs_revision == 1
    obj.name = "long enough"
    obj.save()
    [row] = outbox_rows()
    assert row["revision"] == 2


def test_cqrs_produce_false__writes_nothing(outbox_rows):
    obj = models.Silent.objects.create(name="x")
    obj.name = "y"
    obj.save()
    obj.delete()
    assert outbox_rows() == []


def test_cqrs_fields__limit_instance_data(outbox_rows):
    models.Partial.objects.create(name="x")
    data = outbox_rows()[0]["body"]["instance_data"]
    assert set(data) == {"id", "name", "cqrs_revision", "cqrs_updated"}


def test_serializer__shapes_instance_data(outbox_rows):
    pub = models.Publisher.objects.create(name="acme", book_count=3)
    data = outbox_rows()[0]["body"]["instance_data"]
    assert data["id"] == pub.pk and data["title"] == "ACME" and data["books"] == 3
    assert data["cqrs_revision"] == 0


def test_tracked_fields__previous_data(outbox_rows):
    author = models.Author.objects.create(name="A")
    obj = models.Tracked.objects.create(name="one", author=author)
    obj = models.Tracked.objects.get(pk=obj.pk)
    obj.name = "two"
    obj.status = "untracked"
    obj.save()
    rows = [r for r in outbox_rows() if r["cqrs_id"] == "tracked"]
    assert rows[0]["body"]["previous_data"] == {"name": None, "author_id": None}
    assert rows[1]["body"]["previous_data"] == {"name": "one"}


def test_sync__writes_sync_event_routed_to_one_queue(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    assert author.cqrs_sync(queue="replica_a") is True
    row = outbox_rows()[-1]
    assert row["signal_type"] == "SYNC"
    assert row["routing_key"] == "cqrs.replica_a.author"
    assert row["body"]["instance_data"]["name"] == "Ann"


def test_sync_of_deleted_row__writes_nothing(outbox_rows):
    author = models.Author.objects.create(name="Ann")
    models.Author.objects.filter(pk=author.pk).delete()
    before = len(outbox_rows())
    assert author.cqrs_sync() is False
    assert len(outbox_rows()) == before


def test_raw_master_registered_by_meta(outbox_rows):
    models.Raw.objects.create(name="raw")
    assert outbox_rows()[0]["cqrs_id"] == "raw"


def test_all_field_types__value_forms(outbox_rows):
    author = models.Author.objects.create(name="A")
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    obj = models.AllFields.objects.create(
        int_field=7, bool_field=True, char_field="c", text_field="t",
        date_field=datetime.date(2024, 5, 6), datetime_field=moment,
        decimal_field=decimal.Decimal("12.50"), float_field=1.5, url_field="https://x.org",
        uuid_field=value, json_field={"a": [1, 2]}, author=author,
    )
    data = [r for r in outbox_rows() if r["cqrs_id"] == "all_fields"][0]["body"]["instance_data"]
    assert data["date_field"] == "2024-05-06"
    assert data["datetime_field"] == str(moment)
    assert data["uuid_field"] == str(value)
    assert data["decimal_field"] == 12.5  # a JSON number, as django-cqrs sends it
    assert data["json_field"] == {"a": [1, 2]}
    assert data["author"] == author.pk
    assert data["id"] == obj.pk


@pytest.mark.parametrize("model, key", [(models.UUIDKeyed, "id"), (models.StrKeyed, "code")])
def test_non_integer_keys__instance_pk_as_text(outbox_rows, model, key):
    kwargs = {"name": "n"} if model is models.UUIDKeyed else {"code": "k-1", "name": "n"}
    obj = model.objects.create(**kwargs)
    row = outbox_rows()[0]
    assert row["instance_pk"] == str(obj.pk)
    assert row["body"]["instance_pk"] == str(obj.pk)
    assert row["body"]["instance_data"][key] == str(obj.pk)
    pk = str(obj.pk)
    obj.delete()
    assert json.loads(OutboxEvent.objects.latest("id").payload)["instance_data"]["id"] == pk


def _with_meta_function(settings, func):
    settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS.get("master", {}),
                                                "meta_function": func}}


def test_meta_function__its_result_is_each_events_meta_called_as_django_cqrs_calls_it(
    outbox_rows, settings,
):
    calls = []

    def meta(obj, **kwargs):
        calls.append((obj.pk, sorted(kwargs), kwargs["instance_data"].get("name")))
        return {"tenant": "t1", "for": kwargs["signal_type"]}

    _with_meta_function(settings, meta)
    author = models.Author.objects.create(name="Ann")
    pk = author.pk
    author.delete()
    save, delete = outbox_rows()
    assert save["body"]["meta"] == {"tenant": "t1", "for": "SAVE"}
    assert delete["body"]["meta"] == {"tenant": "t1", "for": "DELETE"}
    # A SAVE passes previous_data as well; a DELETE, whose data is built before the
    # row goes, does not. A DELETE's instance_data names no field but the pk.
    assert calls[0] == (pk, ["instance_data", "previous_data", "signal_type"], "Ann")
    assert calls[1][:2] == (pk, ["instance_data", "signal_type"])


def test_model_with_its_own_get_cqrs_meta__it_gives_the_meta_and_the_setting_is_not_called(
    outbox_rows, settings,
):
    setting_calls = []
    _with_meta_function(settings, lambda obj, **kwargs: setting_calls.append(obj) or {})
    own = mock.Mock(return_value={"own": True})
    with mock.patch.object(models.Author, "get_cqrs_meta", own):
        author = models.Author.objects.create(name="Ann")
    [row] = outbox_rows()
    assert row["body"]["meta"] == {"own": True}
    assert setting_calls == []
    [call] = own.call_args_list
    assert call.kwargs["signal_type"] == "SAVE"
    assert call.kwargs["instance_data"]["id"] == author.pk
    assert "previous_data" in call.kwargs


def test_no_meta_function__meta_is_an_empty_object(outbox_rows):
    models.Author.objects.create(name="Ann")
    [row] = outbox_rows()
    assert row["body"]["meta"] == {}


def test_own_get_cqrs_meta_calling_super__extends_the_settings_meta_as_django_cqrs_documents(
    outbox_rows, settings,
):
    # django-cqrs's README: an override takes super().get_cqrs_meta(**kwargs), the
    # meta_function's result, and adds to it.
    _with_meta_function(settings, lambda obj, **kwargs: {"access": {"tenant": "t1"}})

    def own(self, **kwargs):
        meta = super(models.Author, self).get_cqrs_meta(**kwargs)
        meta["access"]["owner"] = self.name == "Ann"
        return meta

    with mock.patch.object(models.Author, "get_cqrs_meta", own):
        models.Author.objects.create(name="Ann")
    [row] = outbox_rows()
    assert row["body"]["meta"] == {"access": {"tenant": "t1", "owner": True}}
