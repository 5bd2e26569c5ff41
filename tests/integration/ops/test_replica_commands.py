"""Replica-side load and diff commands, and both diff pipelines run step by step."""

import json

import pytest
from django.conf import settings
from django.core.management import CommandError

from cqrs_outbox.models import OutboxEvent, Tombstone
from tests.integration.ops.conftest import run_command
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def authors():
    created = [master.Author.objects.create(name=f"author {i}") for i in range(5)]
    created[0].name = "renamed"
    created[0].save()
    OutboxEvent.objects.all().delete()
    return [master.Author.objects.get(pk=a.pk) for a in created]


def _replica_state():
    return sorted(replica.AuthorRef.objects.values_list("id", "name", "cqrs_revision"))


def _master_state():
    return sorted(master.Author.objects.values_list("id", "name", "cqrs_revision"))


def _mirror(authors):
    for author in authors:
        replica.AuthorRef.cqrs_save(author.to_cqrs_dict())


def test_bulk_load__our_dump_fills_the_replica(authors):
    dump, _ = run_command("cqrs_bulk_dump", "-c", "author", "-o", "-")
    _, err = run_command("cqrs_bulk_load", "-i", "-", "-b", "2", stdin=dump)
    assert _replica_state() == _master_state()
    assert "5 row(s) loaded, 0 failed" in err


def test_bulk_load__from_a_file_with_clear(authors, tmp_path):
    replica.AuthorRef.objects.create(
        id=999, name="stray", cqrs_revision=0, cqrs_updated="2024-01-01T00:00Z"
    )
    path = tmp_path / "author.dump"
    run_command("cqrs_bulk_dump", "-c", "author", "-o", str(path))
    run_command("cqrs_bulk_load", "--input", str(path), "--clear", "true")
    assert _replica_state() == _master_state()


def test_bulk_load__bad_lines_are_reported_and_skipped(authors):
    dump, _ = run_command("cqrs_bulk_dump", "-c", "author", "-o", "-")
    lines = dump.splitlines()
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"id": 77}))  # no revision: the replica refuses it
    _, err = run_command("cqrs_bulk_load", "-i", "-", stdin="\n".join(lines) + "\n")
    assert "Dump file can't be parsed: line 3!" in err
    assert "line 5!" in err
    assert "5 row(s) loaded, 2 failed" in err
    assert _replica_state() == _master_state()


def test_bulk_load__serializer_dump_into_its_replica():
    master.Publisher.objects.create(name="Pub", book_count=4)
    dump, _ = run_command("cqrs_bulk_dump", "-c", "publisher", "-o", "-")
    run_command("cqrs_bulk_load", "-i", "-", stdin=dump)
    assert list(replica.PublisherRef.objects.values_list("title", "books")) == [("PUB", 4)]


@pytest.mark.parametrize(
    "stream, message",
    [("", "stdin is empty"), ("nope\n{}\n", "Wrong CQRS ID: nope! It is no replica model")],
)
def test_bulk_load__bad_header_is_one_clear_error(stream, message):
    with pytest.raises(CommandError, match=message):
        run_command("cqrs_bulk_load", "-i", "-", stdin=stream)


def test_bulk_load__missing_file_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="doesn't exist"):
        run_command("cqrs_bulk_load", "-i", str(tmp_path / "none.dump"))


def test_diff_replica__passes_on_missing_and_stale_keys_with_the_queue(authors):
    _mirror(authors)
    replica.AuthorRef.objects.filter(id=authors[1].pk).delete()
    replica.AuthorRef.objects.filter(id=authors[0].pk).update(name="old", cqrs_revision=0)
    stream, _ = run_command("cqrs_diff_master", "-cid", "author")
    out, err = run_command("cqrs_diff_replica", stdin=stream)
    header, *packages = out.splitlines()
    assert header == f"{stream.splitlines()[0]},{settings.CQRS['queue']}"
    assert sorted(pk for p in packages for pk in json.loads(p)) == [authors[0].pk, authors[1].pk]
    assert "2 of 5 row(s) to resync" in err


def test_diff_pipeline__step_by_step_writes_syncs_aimed_at_the_replica(authors, outbox_rows):
    _mirror(authors)
    replica.AuthorRef.objects.filter(id__in=[authors[2].pk, authors[4].pk]).delete()
    stream, _ = run_command("cqrs_diff_master", "-cid", "author", "-b", "2")
    stream, _ = run_command("cqrs_diff_replica", stdin=stream)
    run_command("cqrs_diff_sync", stdin=stream)
    rows = outbox_rows()
    assert sorted(int(r["instance_pk"]) for r in rows) == [authors[2].pk, authors[4].pk]
    queue = settings.CQRS["queue"]
    assert {(r["signal_type"], r["routing_key"]) for r in rows} == {
        ("SYNC", f"cqrs.{queue}.author")
    }
    for row in rows:  # applied as the consumer would, the replica is whole again
        replica.AuthorRef.cqrs_save(row["body"]["instance_data"], sync=True)
    assert _replica_state() == _master_state()


def test_deleted_pipeline__removes_stale_replica_rows_and_leaves_tombstones(authors):
    _mirror(authors)
    for pk in (900, 901):
        replica.AuthorRef.cqrs_save(
            {
                "id": pk,
                "name": "gone",
                "cqrs_revision": 3,
                "cqrs_updated": "2024-01-01 00:00:00+00:00",
            }
        )
    stream, _ = run_command("cqrs_deleted_diff_replica", "-cid", "author", "-b", "3")
    assert stream.splitlines()[0].startswith("author,")
    stream, err = run_command("cqrs_deleted_diff_master", stdin=stream)
    assert sorted(pk for p in stream.splitlines()[1:] for pk in json.loads(p)) == [900, 901]
    _, err = run_command("cqrs_deleted_sync_replica", stdin=stream)
    assert "2 stale row(s) deleted" in err
    assert _replica_state() == _master_state()
    tombstones = Tombstone.objects.filter(cqrs_id="author").values_list("instance_pk", "revision")
    assert sorted(tombstones) == [("900", 4), ("901", 4)]
    # A late SAVE older than the deletion cannot bring the row back.
    replica.AuthorRef.cqrs_save(
        {"id": 900, "name": "late", "cqrs_revision": 3, "cqrs_updated": "2024-01-01 00:00:00+00:00"}
    )
    assert not replica.AuthorRef.objects.filter(id=900).exists()


def test_deleted_diff_replica__applies_its_filter(authors):
    _mirror(authors)
    out, _ = run_command(
        "cqrs_deleted_diff_replica", "-cid", "author", "-f", json.dumps({"id__in": [authors[3].pk]})
    )
    assert [json.loads(p) for p in out.splitlines()[1:]] == [[authors[3].pk]]
    with pytest.raises(CommandError, match="Bad filter"):
        run_command("cqrs_deleted_diff_replica", "-cid", "author", "-f", '{"nope": 1}')
