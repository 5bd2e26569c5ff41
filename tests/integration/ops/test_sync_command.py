"""cqrs_sync: SYNC events for filtered master rows, written into the outbox in batches."""

import io
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connections, transaction

from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def authors():
    created = [models.Author.objects.create(name=f"author {i}") for i in range(5)]
    OutboxEvent.objects.all().delete()
    return created


def _sync(*args):
    out = io.StringIO()
    call_command("cqrs_sync", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_sync__writes_one_sync_event_per_filtered_row_for_every_replica(authors, outbox_rows):
    ids = [authors[0].pk, authors[3].pk]
    output = _sync("--cqrs-id", "author", "-f", json.dumps({"id__in": ids}))
    rows = outbox_rows()
    assert [r["instance_pk"] for r in rows] == [str(pk) for pk in ids]
    assert {r["signal_type"] for r in rows} == {"SYNC"}
    assert {r["routing_key"] for r in rows} == {"author"}
    body = rows[0]["body"]
    assert body["signal_type"] == "SYNC"
    assert body["instance_data"]["name"] == "author 0"
    assert body["instance_data"]["cqrs_revision"] == 0
    assert output.endswith("Done!\n2 instance(s) synced.\n2 instance(s) processed.\n")


def test_sync__with_queue_routes_to_that_replica_only(authors, outbox_rows):
    _sync("-cid", "author", "-f", json.dumps({"id__in": [authors[1].pk]}), "-q", "replica_a")
    [row] = outbox_rows()
    assert row["routing_key"] == "cqrs.replica_a.author"
    assert row["body"]["instance_pk"] == authors[1].pk


def test_sync__empty_filter_means_every_row_in_batches(authors, outbox_rows):
    _sync("--cqrs-id", "author", "-f", "{}", "--batch", "2")
    assert sorted(int(r["instance_pk"]) for r in outbox_rows()) == sorted(a.pk for a in authors)


def test_sync__without_filter_writes_nothing(authors, outbox_rows):
    assert _sync("--cqrs-id", "author") == "No objects found for filter!\n"  # django-cqrs's
    assert outbox_rows() == []


def test_sync__filter_matching_nothing_says_so(authors, outbox_rows):
    assert "No objects found" in _sync("--cqrs-id", "author", "-f", '{"name": "nobody"}')
    assert outbox_rows() == []


def test_sync__carries_the_current_state_and_revision(authors, outbox_rows):
    author = authors[2]
    author.name = "renamed"
    author.save()
    OutboxEvent.objects.all().delete()
    _sync("--cqrs-id", "author", "-f", json.dumps({"pk": author.pk}))
    [row] = outbox_rows()
    assert row["revision"] == 1
    assert row["body"]["instance_data"]["name"] == "renamed"


def test_sync__skips_rows_that_are_not_sync_instances(outbox_rows):
    models.Filtered.objects.create(name="ok!")
    models.Filtered.objects.create(name="no")
    OutboxEvent.objects.all().delete()
    output = _sync("--cqrs-id", "filtered", "-f", "{}")
    assert [r["body"]["instance_data"]["name"] for r in outbox_rows()] == ["ok!"]
    assert "Done!\n1 instance(s) synced.\n2 instance(s) processed." in output


def test_sync__serializer_and_odd_keys(outbox_rows):
    models.Publisher.objects.create(name="Pub", book_count=3)
    models.StrKeyed.objects.create(code="b", name="B")
    models.StrKeyed.objects.create(code="a", name="A")
    models.UUIDKeyed.objects.create(name="U")
    OutboxEvent.objects.all().delete()
    for cqrs_id in ("publisher", "str_keyed", "uuid_keyed"):
        _sync("--cqrs-id", cqrs_id, "-f", "{}", "-b", "1")
    rows = outbox_rows()
    assert [r["cqrs_id"] for r in rows] == ["publisher", "str_keyed", "str_keyed", "uuid_keyed"]
    assert [r["instance_pk"] for r in rows[1:3]] == ["a", "b"]
    pub = rows[0]["body"]["instance_data"]
    assert (pub["title"], pub["books"], pub["cqrs_revision"]) == ("PUB", 3, 0)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "Bad filter kwargs! The filter is not JSON"),
        ("[1, 2]", "Bad filter kwargs! Expected a JSON object"),
        ('{"nope": 1}', "Bad filter kwargs! Cannot resolve keyword 'nope'"),
        ('{"id": "abc"}', "Bad filter kwargs!"),
    ],
)
def test_sync__bad_filter_exits_1_with_one_line_and_writes_nothing(authors, manage, bad, message):
    before = OutboxEvent.objects.count()
    result = manage("cqrs_sync", "--cqrs-id", "author", "-f", bad)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert OutboxEvent.objects.count() == before


def test_sync__unknown_cqrs_id_exits_1(manage):
    result = manage("cqrs_sync", "--cqrs-id", "nope", "-f", "{}")
    assert result.returncode == 1
    assert "CommandError: Wrong CQRS ID: nope!" in result.stderr


def test_sync__bad_filter_raises_command_error_in_process(authors):
    with pytest.raises(CommandError, match="Bad filter"):
        _sync("--cqrs-id", "author", "-f", '{"id__in": 5}')
    assert OutboxEvent.objects.count() == 0


@pytest.mark.postgres
def test_sync__waits_for_a_write_in_flight_and_never_overtakes_it(authors, outbox_rows):
    author = authors[0]
    locked, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                row = models.Author.objects.get(pk=author.pk)
                row.name = "newer"
                row.save()
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    def syncer():
        try:
            _sync("--cqrs-id", "author", "-f", json.dumps({"pk": author.pk}))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=syncer)]
    threads[0].start()
    assert locked.wait(30)
    threads[1].start()
    threads[1].join(1.0)
    blocked = threads[1].is_alive()  # held by the writer's row lock
    release.set()
    for thread in threads:
        thread.join(30)
    assert blocked
    save, sync = outbox_rows()
    assert (save["signal_type"], sync["signal_type"]) == ("SAVE", "SYNC")
    assert save["id"] < sync["id"]
    assert sync["revision"] == save["revision"] == 1
    assert sync["body"]["instance_data"]["name"] == "newer"


def test_sync__filter_across_a_to_many_relation_syncs_each_row_once(authors, outbox_rows):
    for value in (1, 2, 3):
        models.AllFields.objects.create(int_field=value, author=authors[0])
    OutboxEvent.objects.all().delete()
    _sync("--cqrs-id", "author", "-f", json.dumps({"allfields__int_field__gte": 1}), "-b", "1")
    assert [r["instance_pk"] for r in outbox_rows()] == [str(authors[0].pk)]


def test_sync_repair__marks_each_sync_as_a_repair_inside_the_body(authors, outbox_rows):
    ids = [authors[1].pk, authors[2].pk]
    output = _sync("--cqrs-id", "author", "-f", json.dumps({"id__in": ids}), "--repair")
    rows = outbox_rows()
    assert [(r["signal_type"], r["body"]["repair"]) for r in rows] == [("SYNC", True)] * 2
    assert rows[0]["body"]["instance_data"]["name"] == "author 1"
    assert output.endswith("Done!\n2 instance(s) synced.\n2 instance(s) processed.\n")
    _sync("--cqrs-id", "author", "-f", json.dumps({"id__in": ids}))
    assert ["repair" in r["body"] for r in outbox_rows()] == [True, True, False, False]


def test_sync_repair__a_models_own_cqrs_sync_writes_repairs_too(outbox_rows):
    owner = models.OwnDict.objects.create(name="own")
    OutboxEvent.objects.all().delete()
    _sync("--cqrs-id", "own_dict", "-f", "{}", "--repair")
    [row] = outbox_rows()
    assert (row["signal_type"], row["body"]["repair"]) == ("SYNC", True)
    assert row["instance_pk"] == str(owner.pk)
