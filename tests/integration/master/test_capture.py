"""The ORM's bulk paths write one event per row they change, as save() and delete() do.

django-cqrs (its mixin and manager) publishes from save() and delete() and from its own
`Model.cqrs.bulk_create/bulk_update` only: `QuerySet.update()`, `bulk_update()` and
`bulk_create()` through any other manager change rows its replicas never hear of (the
behaviour its tracker asks about in issues #106, #95 and #76). Here they write events by
default; CQRS['master']['capture'] = 'off' restores the silence.
"""

import pickle

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F

from cqrs_outbox import conf
from cqrs_outbox.master import capture
from cqrs_outbox.metas import MasterMeta
from tests.testproject.master import models

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]


def _by_pk(rows, signal_type="SAVE"):
    return {r["instance_pk"]: r for r in rows if r["signal_type"] == signal_type}


def _saves_after(rows, count):
    return [r for r in rows[count:] if r["signal_type"] == "SAVE"]


@pytest.fixture
def three_authors():
    return [models.Author.objects.create(name=n) for n in ("ann", "bob", "cid")]


def test_update_through_objects__one_save_per_row_with_the_revision_raised(outbox_rows,
                                                                            three_authors):
    """Each row update() changes gets a SAVE with its new state, one revision higher."""
    before = len(outbox_rows())
    changed = models.Author.objects.filter(name__in=["ann", "bob"]).update(name="zed")
    assert changed == 2
    saves = _saves_after(outbox_rows(), before)
    assert sorted(r["instance_pk"] for r in saves) == sorted(
        str(a.pk) for a in three_authors[:2])
    for row in saves:
        assert row["revision"] == 1
        assert row["body"]["instance_data"]["name"] == "zed"
        assert row["body"]["instance_data"]["cqrs_revision"] == 1
    stored = dict(models.Author.objects.values_list("name", "cqrs_revision"))
    assert stored == {"zed": 1, "cid": 0}


def test_update_with_an_expression__event_carries_the_value_the_row_holds(outbox_rows):
    """An F() update is sent with the value the database computed, not the expression."""
    shelf = models.Shelf.objects.create(name="a", size=3)
    models.Shelf.objects.filter(pk=shelf.pk).update(size=F("size") + 4)
    [row] = _saves_after(outbox_rows(), 1)
    assert row["body"]["instance_data"]["size"] == 7
    assert row["revision"] == 1


def test_update_through_a_custom_manager_and_its_queryset_method(outbox_rows):
    """A custom manager built from a custom queryset captures as `objects` does."""
    a = models.Shelf.objects.create(name="alpha")
    models.Shelf.objects.create(name="beta")
    assert models.Shelf.shelves.named("al").update(size=9) == 1
    [row] = _saves_after(outbox_rows(), 2)
    assert (row["instance_pk"], row["revision"]) == (str(a.pk), 1)
    assert row["body"]["instance_data"]["size"] == 9


def test_update_through_a_related_manager(outbox_rows, three_authors):
    """`author.shelves.update()` goes through the related manager Django builds."""
    ann = three_authors[0]
    mine = [models.Shelf.objects.create(name=f"s{i}", author=ann) for i in range(2)]
    models.Shelf.objects.create(name="other", author=three_authors[1])
    before = len(outbox_rows())
    assert ann.shelves.update(size=5) == 2
    saves = _saves_after(outbox_rows(), before)
    assert sorted(r["instance_pk"] for r in saves) == sorted(str(s.pk) for s in mine)
    assert {r["revision"] for r in saves} == {1}


def test_update_twice_in_separate_transactions__revisions_rise_by_one(outbox_rows):
    shelf = models.Shelf.objects.create(name="a")
    for size in (1, 2, 3):
        models.Shelf.objects.filter(pk=shelf.pk).update(size=size)
    assert [(r["revision"], r["body"]["instance_data"]["size"]) for r in outbox_rows()] == [
        (0, 0), (1, 1), (2, 2), (3, 3)]


def test_update_matching_nothing__writes_nothing(outbox_rows):
    assert models.Shelf.objects.filter(name="none").update(size=1) == 0
    assert outbox_rows() == []


def test_bulk_update__one_save_per_object_and_the_objects_get_their_revision(outbox_rows):
    """bulk_update() raises each row's revision and leaves the objects with the value."""
    shelves = [models.Shelf.objects.create(name=f"s{i}") for i in range(3)]
    for i, shelf in enumerate(shelves):
        shelf.size = 10 + i
    assert models.Shelf.objects.bulk_update(shelves, ["size"], batch_size=2) == 3
    saves = _saves_after(outbox_rows(), 3)
    assert {r["instance_pk"]: r["body"]["instance_data"]["size"] for r in saves} == {
        str(s.pk): 10 + i for i, s in enumerate(shelves)}
    assert {r["revision"] for r in saves} == {1}
    assert [s.cqrs_revision for s in shelves] == [1, 1, 1]


def test_bulk_create__one_save_per_row(outbox_rows):
    created = models.Shelf.objects.bulk_create([models.Shelf(name=n) for n in "xyz"])
    rows = outbox_rows()
    assert sorted(r["instance_pk"] for r in rows) == sorted(str(s.pk) for s in created)
    assert {(r["signal_type"], r["revision"]) for r in rows} == {("SAVE", 0)}


def test_queryset_delete__one_delete_per_row_also_through_a_related_manager(outbox_rows,
                                                                            three_authors):
    """QuerySet.delete() sends per-row signals for master models, so each row's DELETE is
    written; Django's fast path, which skips them, is never taken for a master model."""
    ann = three_authors[0]
    shelves = [models.Shelf.objects.create(name=f"s{i}", author=ann) for i in range(2)]
    before = len(outbox_rows())
    ann.shelves.all().delete()
    models.Author.objects.filter(name="bob").delete()
    deletes = [r for r in outbox_rows()[before:] if r["signal_type"] == "DELETE"]
    assert sorted(r["instance_pk"] for r in deletes) == sorted(
        [str(s.pk) for s in shelves] + [str(three_authors[1].pk)])


def test_savepoint_rolled_back_after_update__leaves_no_event(outbox_rows):
    shelf = models.Shelf.objects.create(name="a")
    with transaction.atomic():
        models.Shelf.objects.filter(pk=shelf.pk).update(size=1)
        try:
            with transaction.atomic():
                models.Shelf.objects.filter(pk=shelf.pk).update(size=2)
                raise RuntimeError("roll this savepoint back")
        except RuntimeError:
            pass
    rows = outbox_rows()
    assert [(r["revision"], r["body"]["instance_data"]["size"]) for r in rows] == [
        (0, 0), (1, 1)]


def test_update_whose_event_cannot_be_built__rolls_the_update_back(outbox_rows):
    """No committed change without its event: a serializer failing at commit undoes the
    update() that needed it."""
    fragile = models.Fragile.objects.create(name="fine")
    with pytest.raises(Exception, match="boom"):
        models.Fragile.objects.filter(pk=fragile.pk).update(name="boom now")
    fragile.refresh_from_db()
    assert (fragile.name, fragile.cqrs_revision) == ("fine", 0)
    assert len(outbox_rows()) == 1


def test_filtered_and_silent_models__follow_their_own_rules(outbox_rows):
    """is_sync_instance() filters bulk-written rows too; a CQRS_PRODUCE = False model
    is left as Django leaves it."""
    models.Filtered.objects.create(name="long name")
    models.Filtered.objects.update(name="ab")
    silent = models.Silent.objects.create(name="quiet")
    models.Silent.objects.update(name="still quiet")
    silent.refresh_from_db()
    assert silent.cqrs_revision == 0
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows()] == ["long name"]


def test_tracked_fields__previous_data_holds_the_values_before_the_update(outbox_rows):
    tracked = models.Tracked.objects.create(name="old")
    models.Tracked.objects.filter(pk=tracked.pk).update(name="new")
    row = outbox_rows()[-1]
    assert row["body"]["previous_data"]["name"] == "old"
    assert row["body"]["instance_data"]["name"] == "new"


def test_cqrs_manager_aliases__one_event_per_row(outbox_rows, three_authors):
    """django-cqrs's `Model.cqrs.bulk_update(queryset, **values)` and
    `Model.cqrs.bulk_create(objs)` still write exactly one event per row."""
    before = len(outbox_rows())
    models.Author.cqrs.bulk_update(models.Author.objects.filter(name="ann"), name="amy")
    created = models.Author.cqrs.bulk_create([models.Author(name="dan")])
    rows = outbox_rows()[before:]
    assert [(r["instance_pk"], r["revision"]) for r in rows] == [
        (str(three_authors[0].pk), 1), (str(created[0].pk), 0)]


@pytest.mark.parametrize("where", ["setting", "model"])
def test_capture_off__bulk_calls_are_silent_as_in_django_cqrs(outbox_rows, settings,
                                                              monkeypatch, where):
    if where == "setting":
        settings.CQRS = {**settings.CQRS, "master": {**settings.CQRS.get("master", {}),
                                                     "capture": "off"}}
    else:
        monkeypatch.setattr(models.Shelf, "CQRS_CAPTURE", "off", raising=False)
    shelf = models.Shelf.objects.create(name="a")
    models.Shelf.objects.filter(pk=shelf.pk).update(size=1)
    shelf.size = 2
    models.Shelf.objects.bulk_update([shelf], ["size"])
    models.Shelf.objects.bulk_create([models.Shelf(name="b")])
    shelf.refresh_from_db()
    assert (shelf.size, shelf.cqrs_revision) == (2, 0)
    assert [r["revision"] for r in outbox_rows()] == [0]
    # django-cqrs's own bulk calls write their events in either mode
    models.Shelf.cqrs.bulk_update(models.Shelf.objects.filter(pk=shelf.pk), size=3)
    assert [r["revision"] for r in outbox_rows()] == [0, 1]
    made = models.Shelf.cqrs.bulk_create([models.Shelf(name="c")])
    assert [(r["instance_pk"], r["revision"]) for r in outbox_rows()[2:]] == [
        (str(made[0].pk), 0)]


def test_cqrs_bulk_create__queues_each_row_once_and_still_signals_every_receiver(
    outbox_rows, monkeypatch
):
    """The capturing queryset queues the rows of `Model.cqrs.bulk_create` itself; the
    post_bulk_create signal still reaches every receiver with the created rows, and the
    outbox's own receiver does not queue them a second time."""
    from cqrs_outbox.master import outbox, signals

    queued = []
    real_enqueue = outbox.enqueue
    monkeypatch.setattr(outbox, "enqueue", lambda *a, **k: queued.append(a[1]) or
                        real_enqueue(*a, **k))
    heard = []

    def receiver(sender, instances, using, **kwargs):
        heard.append((sender, [i.name for i in instances], using))

    signals.post_bulk_create.connect(receiver, sender=models.Author)
    try:
        made = models.Author.cqrs.bulk_create([models.Author(name=n) for n in "xyz"])
    finally:
        signals.post_bulk_create.disconnect(receiver, sender=models.Author)
    assert heard == [(models.Author, ["x", "y", "z"], "default")]
    assert len(queued) == 3 and len(set(queued)) == 3
    assert [(r["instance_pk"], r["revision"]) for r in outbox_rows()] == [
        (str(a.pk), 0) for a in made]


def test_capture_setting__anything_but_the_three_modes_is_refused_by_name():
    with pytest.raises(conf.ConfigurationError, match=r"capture.*'orm', 'database', 'off'"):
        conf.build({"master": {"capture": "triggers"}})
    assert conf.build({"master": {"capture": "database"}}).master.capture == "database"


def test_model_attribute__a_bad_value_is_refused_when_the_model_is_registered(monkeypatch):
    monkeypatch.setattr(models.Shelf, "CQRS_CAPTURE", "sometimes")
    with pytest.raises(ImproperlyConfigured, match=r"Shelf.CQRS_CAPTURE is 'sometimes'"):
        MasterMeta.register(models.Shelf)


def test_capturing_queryset__pickles_and_deconstructs_as_the_original():
    qs = models.Shelf.shelves.named("a")
    assert isinstance(qs, capture.CapturingQuerySet)
    assert type(pickle.loads(pickle.dumps(qs))) is type(qs)
    assert models.Shelf.shelves.deconstruct()[1].endswith("models.ShelfManager")


def test_update_on_postgresql_and_sqlite__one_update_returning_and_no_read(outbox_rows):
    """Where the database returns the changed rows, update() of a plain manager is one
    UPDATE ... RETURNING: no locking read before it, no read after it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor == "mysql":
        pytest.skip("MySQL/MariaDB have no UPDATE ... RETURNING: the rows are read by pk")
    for name in ("a", "b"):
        models.Author.objects.create(name=name)
    with CaptureQueriesContext(connection) as seen:
        with transaction.atomic():
            assert models.Author.objects.filter(name="a").update(name="z") == 1
    statements = [q["sql"] for q in seen.captured_queries
                  if "cqrs_outbox_event" not in q["sql"]
                  and q["sql"].split()[0] not in ("BEGIN", "COMMIT")]
    assert [s.split()[0] for s in statements] == ["UPDATE"]
    assert "RETURNING" in statements[0]
    assert outbox_rows()[-1]["body"]["instance_data"]["name"] == "z"


def test_many_events_with_hostile_text__stored_exactly(outbox_rows):
    """A transaction of many events (psycopg 3 then gets its values written into the
    INSERT) keeps every byte of quotes, backslashes, percent signs and non-ASCII text."""
    names = [f"o'reilly \\ 100%s %% {{x}} \u00e9\u4e2d {i} '); DROP TABLE x; --" for i in range(80)]
    created = models.Author.objects.bulk_create([models.Author(name=n) for n in names])
    rows = outbox_rows()[-80:]
    assert [r["body"]["instance_data"]["name"] for r in rows] == names
    assert [r["instance_pk"] for r in rows] == [str(a.pk) for a in created]
    assert sorted(models.Author.objects.values_list("name", flat=True)) == sorted(names)


@pytest.mark.parametrize("manager", ["objects", "cqrs"])
def test_update_of_a_filter_matching_nothing__no_event_and_no_error(outbox_rows, manager):
    """`filter(id__in=[])` cannot even be written as SQL (Django raises EmptyResultSet
    inside); update() and django-cqrs's bulk_update return 0 and write nothing."""
    models.Author.objects.create(name="a")
    before = len(outbox_rows())
    if manager == "objects":
        assert models.Author.objects.filter(id__in=[]).update(name="z") == 0
    else:
        models.Author.cqrs.bulk_update(models.Author.objects.filter(id__in=[]), name="z")
    assert len(outbox_rows()) == before
