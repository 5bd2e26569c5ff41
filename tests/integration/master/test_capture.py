"""The ORM's bulk paths write one event per row they change, as save() and delete() do.

django-cqrs (its mixin and manager) publishes from save() and delete() and from its own
`Model.cqrs.bulk_create/bulk_update` only: `QuerySet.update()`, `bulk_update()` and
`bulk_create()` through any other manager change rows its replicas never hear of (the
behaviour its tracker asks about in issues #106, #95 and #76). Here they write events by
default; CQRS['master']['capture'] = 'off' restores the silence.
"""

import pickle
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Count, F, Manager, QuerySet
from django.db.models.manager import BaseManager
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

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


# The edges of each bulk path.
def _statements(seen, verb, table):
    return [q["sql"] for q in seen.captured_queries
            if q["sql"].lstrip().upper().startswith(verb) and table in q["sql"]]


def test_update_by_pk__rows_go_in_chunks_of_500_pks(outbox_rows):
    """Rows updated by pk (here a model with tracked fields, which every database takes
    that way) are named 500 at a time, so no statement outgrows a database's limit on
    parameters; every row still gets its event."""
    models.Tracked.objects.bulk_create([models.Tracked(name=f"t{i}") for i in range(501)])
    before = len(outbox_rows())
    with CaptureQueriesContext(connection) as seen:
        assert models.Tracked.objects.update(status="seen") == 501
    assert len(_statements(seen, "UPDATE", "master_tracked")) == 2
    saves = _saves_after(outbox_rows(), before)
    assert len({r["instance_pk"] for r in saves}) == 501
    assert {r["body"]["instance_data"]["status"] for r in saves} == {"seen"}


def test_update__an_evaluated_queryset_shows_the_new_values_after_it(outbox_rows):
    """As with Django's own update(), the queryset forgets the rows it had read."""
    for name in ("s1", "s2"):
        models.Shelf.objects.create(name=name)
    shelves = models.Shelf.objects.filter(name__startswith="s").order_by("name")
    assert [s.size for s in shelves] == [0, 0]
    shelves.update(size=4)
    assert [(s.size, s.cqrs_revision) for s in shelves] == [(4, 1), (4, 1)]


def test_bulk_calls__templates_may_not_call_them():
    """Django's template engine calls no method marked alters_data; the bulk calls that
    write rows and events keep that mark, as Django's own have it."""
    models.Shelf.objects.create(name="a")
    shown = Template("{{ qs.update }}|{{ qs.bulk_create }}|{{ qs.bulk_update }}").render(
        Context({"qs": models.Shelf.objects.all()}))
    assert shown == "||"
    for name in ("update", "bulk_update", "bulk_create"):
        assert getattr(getattr(capture.CapturingQuerySet, name), "alters_data", False) is True


def test_bulk_update__naming_the_tracking_fields_changes_nothing(outbox_rows):
    """Fields listing cqrs_revision and cqrs_updated themselves still raise each revision
    by exactly one, with one event per row."""
    shelves = [models.Shelf.objects.create(name=f"s{i}") for i in range(2)]
    for shelf in shelves:
        shelf.size = 7
    assert models.Shelf.objects.bulk_update(
        shelves, ["size", "cqrs_revision", "cqrs_updated"]) == 2
    saves = _saves_after(outbox_rows(), 2)
    assert sorted((r["instance_pk"], r["revision"]) for r in saves) == sorted(
        (str(s.pk), 1) for s in shelves)
    assert sorted(models.Shelf.objects.values_list("size", "cqrs_revision")) == [(7, 1), (7, 1)]


def test_bulk_calls_inside_a_transaction__open_no_savepoint(outbox_rows):
    """Like Django's own bulk calls, ours join the caller's transaction without a
    savepoint of their own: no extra round trips, and a failure rolls back with it."""
    shelf = models.Shelf.objects.create(name="a")
    with CaptureQueriesContext(connection) as seen, transaction.atomic():
        models.Shelf.objects.filter(pk=shelf.pk).update(size=1)
        shelf.size = 2
        models.Shelf.objects.bulk_update([shelf], ["size"])
        models.Shelf.objects.bulk_create([models.Shelf(name="b")])
    assert [q["sql"] for q in seen.captured_queries if "SAVEPOINT" in q["sql"].upper()] == []
    assert [r["revision"] for r in outbox_rows()] == [0, 2, 0]


def test_bulk_create__tracked_fields_previous_data_as_create_gives_it(outbox_rows):
    """A row made by bulk_create() carries the previous_data a create() gives: each
    tracked field it sets, with None."""
    author = models.Author.objects.create(name="a")
    models.Tracked.objects.create(name="one", author=author)
    models.Tracked.objects.bulk_create([models.Tracked(name="two", author=author)])
    created, bulk = [r["body"]["previous_data"] for r in outbox_rows()
                     if r["body"]["cqrs_id"] == "tracked"]
    assert bulk == created == {"name": None, "author_id": None}


def test_bulk_create__a_copied_instance_carries_no_previous_data_of_its_original(outbox_rows):
    """An instance copied the Django way (pk set to None) after an update is a new row:
    its event does not carry the values its original had before that update."""
    original = models.Tracked.objects.create(name="old")
    original.name = "new"
    original.save()
    original.pk, original._state.adding, original.cqrs_revision = None, True, 0
    [copy] = models.Tracked.objects.bulk_create([original])
    row = outbox_rows()[-1]
    assert row["instance_pk"] == str(copy.pk)
    assert row["body"]["previous_data"] == {"name": None}


def test_bulk_create__rows_left_without_a_pk_are_counted_in_one_warning(outbox_rows,
                                                                         monkeypatch,
                                                                         caplog):
    """Where the database hands back no primary keys, the rows whose pk was given still
    get their events, and one warning counts those that cannot have one."""
    models.Shelf.objects.bulk_create([models.Shelf(name="all named")])
    assert caplog.records == []
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    given = [models.Shelf(id=9001, name="x"), models.Shelf(id=9002, name="y")]
    models.Shelf.objects.bulk_create([*given, models.Shelf(name="z")])
    assert [r["instance_pk"] for r in outbox_rows()[1:]] == ["9001", "9002"]
    [record] = caplog.records
    assert record.getMessage().startswith(
        "bulk_create of 3 Shelf rows: the database returned no primary key for 1 of them")


def test_update__a_queryset_class_overriding_update_still_runs_it(outbox_rows):
    """A queryset class whose update() adds a value keeps doing so; the one-statement
    path, which would skip it, is not taken for it."""
    class Stamping(QuerySet):
        def update(self, **kwargs):
            kwargs.setdefault("name", "stamped")
            return super().update(**kwargs)

    shelf = models.Shelf.objects.create(name="plain")
    queryset = capture._capturing_queryset(Stamping)(model=models.Shelf)
    assert queryset.filter(pk=shelf.pk).update(size=3) == 1
    shelf.refresh_from_db()
    assert (shelf.name, shelf.size, shelf.cqrs_revision) == ("stamped", 3, 1)
    assert outbox_rows()[-1]["body"]["instance_data"]["name"] == "stamped"


def test_update__a_database_with_no_dialect_takes_the_portable_path(monkeypatch):
    """UPDATE ... RETURNING is only written for a database whose dialect says it has it;
    another backend gets the rows read by pk."""
    plain = models.Author.objects.all()
    assert capture._can_return(plain, "default") is (connection.vendor != "mysql")
    monkeypatch.setattr(connection, "vendor", "oracle")
    assert capture._can_return(plain, "default") is False


def test_update_by_pk__of_a_distinct_queryset(outbox_rows):
    """FOR UPDATE cannot go with DISTINCT: the rows are named first, then locked."""
    author = models.Author.objects.create(name="a")
    rows = [models.Tracked.objects.create(name=n, author=author) for n in ("x", "y")]
    before = len(outbox_rows())
    changed = models.Tracked.objects.filter(author__name="a").distinct().update(status="d")
    assert changed == 2
    saves = _saves_after(outbox_rows(), before)
    assert sorted((r["instance_pk"], r["body"]["instance_data"]["status"]) for r in saves) \
        == sorted((str(t.pk), "d") for t in rows)


def test_update_by_pk__of_an_annotated_queryset_reads_the_rows_back_once(outbox_rows):
    """An annotated queryset is updated by pk: its pks named, locked, the rows updated and
    read back once (a model without tracked fields needs no read before)."""
    three = [models.Author.objects.create(name=n) for n in ("ann", "bob")]
    models.Shelf.objects.create(name="s", author=three[1])
    before = len(outbox_rows())
    with CaptureQueriesContext(connection) as seen:
        changed = models.Author.objects.annotate(n=Count("shelves")).filter(n=0).update(
            name="none")
    assert changed == 1
    assert len(_statements(seen, "SELECT", "master_author")) == 3
    [row] = _saves_after(outbox_rows(), before)
    assert (row["instance_pk"], row["body"]["instance_data"]["name"]) == (str(three[0].pk),
                                                                          "none")


def test_install__twice_leaves_the_managers_capturing_once(outbox_rows):
    """Registering a model again (a reload, a subclass) does not wrap its managers twice."""
    classes = [type(m) for m in models.Shelf._meta.managers]
    capture.install(models.Shelf)
    assert [type(m) for m in models.Shelf._meta.managers] == classes
    shelf = models.Shelf.objects.create(name="a")
    models.Shelf.shelves.filter(pk=shelf.pk).update(size=2)
    assert [r["revision"] for r in outbox_rows()] == [0, 1]


def test_capturing_manager__built_from_a_capturing_queryset_is_not_mixed_twice():
    """A manager made from a queryset class that already captures (its as_manager(), say)
    keeps that queryset class."""
    queryset_class = type(models.Shelf.shelves.all())
    assert capture._capturing_queryset(queryset_class) is queryset_class
    manager_class = capture._capturing_manager(Manager.from_queryset(queryset_class))
    assert manager_class._queryset_class is queryset_class


def test_install__a_manager_without_querysets_is_left_alone():
    """A manager built on BaseManager with no queryset class of its own is not touched."""
    class Bare(BaseManager):
        pass

    bare, plain = Bare(), Manager()
    fake = SimpleNamespace(CQRS_CAPTURE=None, __qualname__="Fake",
                           _meta=SimpleNamespace(managers=[bare, plain]))
    capture.install(fake)
    assert type(bare) is Bare
    assert issubclass(type(plain), capture._CapturingManager)


def test_update__moves_cqrs_updated_as_a_save_does(outbox_rows):
    """update() stamps the rows it changes with the time of the change, as save() does,
    and the event carries that stamp."""
    shelf = models.Shelf.objects.create(name="a")
    created_at = shelf.cqrs_updated
    models.Shelf.objects.filter(pk=shelf.pk).update(size=1)
    shelf.refresh_from_db()
    assert shelf.cqrs_updated > created_at
    first, second = [r["body"]["instance_data"]["cqrs_updated"] for r in outbox_rows()]
    assert second != first


def test_bulk_update__holds_no_rows_once_it_returns():
    """The rows bulk_update() collects for its objects are dropped when it returns or
    fails, so later update() calls in the same thread or task keep none of theirs."""
    shelf = models.Shelf.objects.create(name="a")
    shelf.size = 3
    models.Shelf.objects.bulk_update([shelf], ["size"])
    assert capture._updated_rows.get() is None
    shelf.size = "not a number"
    with pytest.raises((ValueError, TypeError)):
        models.Shelf.objects.bulk_update([shelf], ["size"])
    assert capture._updated_rows.get() is None
