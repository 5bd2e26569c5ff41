"""Events apply by revision, in batches, through the same path the consumer uses."""

import datetime
import decimal
import json
import uuid

import pytest
from django.db.models import signals

from cqrs_outbox.models import Tombstone
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db(transaction=True)


def _names(model=models.AuthorRef):
    return {r.pk: (r.name, r.cqrs_revision) for r in model.objects.all()}


def test_save__creates_then_newer_updates(apply_batch):
    assert apply_batch(ev.save("author", 1, 0, name="a")) == ["applied"]
    assert apply_batch(ev.save("author", 1, 1, name="b")) == ["applied"]
    assert _names() == {1: ("b", 1)}


def test_save__equal_or_older_is_ignored(apply_batch):
    apply_batch(ev.save("author", 1, 3, name="three"))
    assert apply_batch(ev.save("author", 1, 3, name="dup"), ev.save("author", 1, 2, name="old")) \
        == ["ignored", "ignored"]
    assert _names() == {1: ("three", 3)}


def test_sync__applies_at_equal_revision_but_not_older(apply_batch):
    apply_batch(ev.save("author", 1, 3, name="drifted"))
    assert apply_batch(ev.sync("author", 1, 3, name="truth")) == ["applied"]
    assert apply_batch(ev.sync("author", 1, 2, name="stale")) == ["ignored"]
    assert _names() == {1: ("truth", 3)}


def test_delete__leaves_a_tombstone_that_stops_an_older_save(apply_batch):
    apply_batch(ev.save("author", 1, 0, name="a"))
    assert apply_batch(ev.delete("author", 1, 1)) == ["applied"]
    assert apply_batch(ev.save("author", 1, 0, name="again")) == ["ignored"]
    assert apply_batch(ev.sync("author", 1, 1, name="again")) == ["ignored"]
    assert _names() == {}
    assert list(Tombstone.objects.values_list("cqrs_id", "instance_pk", "revision")) == [
        ("author", "1", 1)
    ]


def test_delete__before_its_row_arrived_still_wins(apply_batch):
    assert apply_batch(ev.delete("author", 7, 4), ev.save("author", 7, 3, name="late")) == [
        "applied", "ignored"
    ]
    assert _names() == {}


def test_save__newer_than_the_tombstone_brings_the_row_back(apply_batch):
    apply_batch(ev.save("author", 1, 0, name="a"), ev.delete("author", 1, 1))
    assert apply_batch(ev.save("author", 1, 2, name="back")) == ["applied"]
    assert _names() == {1: ("back", 2)}


def test_batch__folds_many_events_of_one_row_in_delivery_order(apply_batch):
    outcomes = apply_batch(
        ev.save("author", 1, 0, name="a"),
        ev.save("author", 1, 2, name="c"),
        ev.save("author", 1, 1, name="b"),
        ev.delete("author", 1, 3),
        ev.save("author", 1, 4, name="reborn"),
        ev.save("author", 2, 5, name="other"),
        ev.save("author", 2, 5, name="other dup"),
    )
    assert outcomes == ["applied", "applied", "ignored", "applied", "applied", "applied",
                        "ignored"]
    assert _names() == {1: ("reborn", 4), 2: ("other", 5)}


def test_save__converts_every_field_type_and_sets_foreign_keys_by_id(apply_batch):
    uid = uuid.uuid4()
    apply_batch(ev.save(
        "all_fields", 1, 0, int_field=5, bool_field=True, char_field="c", text_field="t",
        date_field="2026-01-02", datetime_field="2026-01-02 03:04:05+00:00",
        decimal_field="12.50", float_field=1.5, url_field="http://x", uuid_field=str(uid),
        json_field={"a": [1]}, author=9, unknown_master_field="ignored",
    ))
    row = models.AllFieldsRef.objects.get()
    assert (row.int_field, row.bool_field, row.char_field, row.text_field) == (5, True, "c", "t")
    assert row.date_field == datetime.date(2026, 1, 2)
    utc = datetime.timezone.utc
    assert row.datetime_field == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc)
    assert row.decimal_field == decimal.Decimal("12.50")
    assert (row.float_field, row.url_field, row.uuid_field) == (1.5, "http://x", uid)
    assert (row.json_field, row.author_id) == ({"a": [1]}, 9)


def test_save__keeps_columns_an_update_does_not_send(apply_batch):
    apply_batch(ev.save("all_fields", 1, 0, int_field=5, char_field="kept"))
    apply_batch(ev.save("all_fields", 1, 1, int_field=6))
    row = models.AllFieldsRef.objects.get()
    assert (row.int_field, row.char_field, row.cqrs_revision) == (6, "kept", 1)


def test_keys__uuid_and_string_primary_keys(apply_batch):
    uid = str(uuid.uuid4())
    apply_batch(ev.save("uuid_keyed", uid, 0, name="u"),
                {**ev.save("str_keyed", "k-1", 0, name="s"),
                 "instance_data": {"code": "k-1", "name": "s", "cqrs_revision": 0,
                                   "cqrs_updated": ev.UPDATED}})
    apply_batch(ev.delete("uuid_keyed", uid, 1), ev.save("uuid_keyed", uid, 0, name="u"))
    assert not models.UUIDKeyedRef.objects.exists()
    assert models.StrKeyedRef.objects.get().name == "s"


def _str_keyed(code, revision, name):
    return {**ev.save("str_keyed", code, revision, name=name),
            "instance_data": {"code": code, "name": name, "cqrs_revision": revision,
                              "cqrs_updated": ev.UPDATED}}


@pytest.mark.parametrize("together", [False, True], ids=["two_batches", "one_batch"])
def test_keys__a_late_save_of_a_uuid_or_string_keyed_row_changes_nothing(
    apply_batch, together
):
    """The revisions held are read back by primary key (one array of keys on
    PostgreSQL): a uuid or string key read back must match the event's own, or the
    late revision 1 would overwrite revision 2."""
    uid = str(uuid.uuid4())
    newer = [ev.save("uuid_keyed", uid, 2, name="two"), _str_keyed("k-1", 2, "two"),
             _str_keyed("k-2", 0, "zero")]
    older = [ev.save("uuid_keyed", uid, 1, name="one"), _str_keyed("k-1", 1, "one")]
    if together:
        apply_batch(*newer, *older)
    else:
        apply_batch(*newer)
        apply_batch(*older)
    assert [(r.name, r.cqrs_revision) for r in models.UUIDKeyedRef.objects.all()] == [
        ("two", 2)]
    assert sorted((r.code, r.name, r.cqrs_revision)
                  for r in models.StrKeyedRef.objects.all()) == [
        ("k-1", "two", 2), ("k-2", "zero", 0)]


def test_mapping__renames_master_fields(apply_batch):
    apply_batch(ev.save("tracked", 1, 0, name="n", status="new", author=None))
    row = models.TrackedRef.objects.get()
    assert (row.title, row.state) == ("n", "new")


def test_serializer_master__replica_fields_are_the_serializer_keys(apply_batch):
    apply_batch(ev.save("publisher", 1, 0, title="ACME", books=3))
    assert models.PublisherRef.objects.values_list("title", "books").get() == ("ACME", 3)


def test_custom_serialization__runs_the_models_handlers(apply_batch):
    apply_batch(ev.save("filtered", 1, 0, name="quiet"))
    apply_batch(ev.save("filtered", 1, 1, name="louder"), ev.save("filtered", 1, 0, name="x"))
    row = models.FilteredRef.objects.get()
    assert (row.shout, row.cqrs_revision) == ("LOUDER", 1)


def test_meta__reaches_handlers_of_models_that_ask_for_it(apply_batch):
    dct = ev.save("with_delete_data", 1, 0, name="m")
    apply_batch({**dct, "meta": {"who": "test"}})
    assert models.WithDeleteDataRef.objects.get().last_meta == {"who": "test"}


@pytest.mark.parametrize("meta", [["a", 1], "text", 7, 2.5, True, {"nested": [{"x": None}]}],
                         ids=["list", "string", "int", "float", "bool", "object"])
def test_meta__of_any_json_kind_reaches_the_handlers(apply_batch, meta):
    """django-cqrs passes `meta` to the hooks of a CQRS_META model as the body holds it,
    whatever JSON it is; a master whose meta_function returns a list feeds it too."""
    body = json.loads(json.dumps({**ev.save("with_delete_data", 1, 0, name="m"), "meta": meta}))
    assert apply_batch(body) == ["applied"]
    assert models.WithDeleteDataRef.objects.get().last_meta == meta


def test_raw_replica__gets_every_event_without_revision_checks(apply_batch):
    apply_batch(ev.save("raw", 1, 0, name="r"), ev.save("raw", 1, 0, name="r"),
                ev.delete("raw", 1, 1))
    assert list(models.RawLog.objects.order_by("id").values_list("signal_type", "pk_value")) == [
        ("SAVE", "1"), ("SAVE", "1"), ("DELETE", "1")
    ]


def test_signal_receivers__see_every_applied_save():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((instance.pk, instance.name))

    from tests.integration.replica.conftest import _apply

    signals.post_save.connect(receiver, sender=models.AuthorRef)
    try:
        _apply(ev.save("author", 1, 0, name="a"), ev.save("author", 1, 1, name="b"))
    finally:
        signals.post_save.disconnect(receiver, sender=models.AuthorRef)
    assert seen == [(1, "a"), (1, "b")]


@pytest.mark.parametrize(
    "dct, reason",
    [
        (ev.save("author", 1, 0), "required"),  # no name
        (ev.save("tracked", 1, 0, name="n"), "CQRS_MAPPING"),  # no status
        (ev.save("author", 1, "1", name="a"), "integer"),
        (ev.save("all_fields", 1, 0, int_field="many"), "int_field"),
        ({**ev.save("author", 1, 0, name="a"), "instance_data": {
            "id": None, "name": "a", "cqrs_revision": 0, "cqrs_updated": ev.UPDATED}}, "null"),
        (ev.delete("author", "x", 1), "id"),
    ],
)
def test_bad_data__is_reported_and_the_rest_applies(dct, reason):
    from cqrs_outbox.core import wire
    from cqrs_outbox.registry import ReplicaRegistry
    from cqrs_outbox.replica import apply

    good = ev.save("author", 2, 0, name="good")
    batch = [(wire.validate(d), ReplicaRegistry.get_model_by_cqrs_id(d["cqrs_id"]))
             for d in (dct, good)]
    bad, ok = apply.apply(batch)
    assert bad.status == "bad" and reason in bad.reason
    assert ok.status == "applied"
    assert models.AuthorRef.objects.filter(pk=2).exists()


def test_failing_handler__is_isolated_and_the_rest_of_the_batch_applies(apply_batch, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("CQRS_TEST_CONTROL_DIR", str(tmp_path))
    outcomes = apply_batch(
        ev.save("author", 1, 0, name="before"),
        ev.save("flaky", 1, 0, name="fail:always"),
        ev.save("author", 2, 0, name="after"),
        ev.save("flaky", 2, 0, name="fail:0"),
    )
    assert outcomes == ["applied", "failed", "applied", "applied"]
    assert sorted(_names()) == [1, 2]
    assert list(models.FlakyRef.objects.values_list("id", flat=True)) == [2]


def test_tombstones__are_purged_after_the_retention(apply_batch):
    from cqrs_outbox.replica import queries

    apply_batch(ev.delete("author", 1, 1), ev.delete("author", 2, 1))
    Tombstone.objects.filter(instance_pk="1").update(
        deleted_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    )
    assert queries.purge_tombstones("default", retention=3600) == 1
    assert list(Tombstone.objects.values_list("instance_pk", flat=True)) == ["2"]


def test_refusing_hook__returns_none_and_the_consumer_still_learns_the_reason(caplog):
    from cqrs_outbox.core import wire
    from cqrs_outbox.registry import ReplicaRegistry
    from cqrs_outbox.replica import apply

    body = ev.save("filtered", 1, 0, name="s" * 150)  # too long for the model's column
    assert models.FilteredRef.cqrs_save(body["instance_data"]) is None  # called directly
    good = ev.save("author", 2, 0, name="good")
    batch = [(wire.validate(d), ReplicaRegistry.get_model_by_cqrs_id(d["cqrs_id"]))
             for d in (body, good)]
    refused, ok = apply.apply(batch)
    assert refused.status == "bad"  # a DataError: dead-lettered at once, not retried
    assert "FilteredRef.cqrs_save() returned None: CQRS create error: pk = 1 (filtered)" \
        in refused.reason
    assert ok.status == "applied"
    assert not models.FilteredRef.objects.exists()
