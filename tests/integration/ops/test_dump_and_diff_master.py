"""Master-side dump and diff commands, in django-cqrs's line formats."""

import json

import pytest
from django.core.management import CommandError

from cqrs_outbox.models import OutboxEvent
from tests.integration.ops.conftest import run_command
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def authors():
    created = [models.Author.objects.create(name=f"author {i}") for i in range(4)]
    created[1].name = "changed"
    created[1].save()
    OutboxEvent.objects.all().delete()
    return [models.Author.objects.get(pk=a.pk) for a in created]


def test_bulk_dump__writes_the_cqrs_id_then_one_json_row_per_line(authors):
    out, err = run_command("cqrs_bulk_dump", "--cqrs-id", "author", "-o", "-", "-b", "3")
    lines = out.splitlines()
    assert lines[0] == "author"
    rows = [json.loads(line) for line in lines[1:]]
    assert rows == [a.to_cqrs_dict() for a in authors]
    assert rows[1]["name"] == "changed" and rows[1]["cqrs_revision"] == 1
    assert err.endswith("Done!\n4 instance(s) saved.\n4 instance(s) processed.\n")
    assert OutboxEvent.objects.count() == 0  # a dump is no event


def test_bulk_dump__to_a_file_refuses_to_overwrite_without_force(authors, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_command("cqrs_bulk_dump", "-c", "author")
    dump = (tmp_path / "author.dump").read_text()
    assert dump.splitlines()[0] == "author" and len(dump.splitlines()) == 5
    with pytest.raises(CommandError, match="exists"):
        run_command("cqrs_bulk_dump", "-c", "author")
    models.Author.objects.create(name="late")
    run_command("cqrs_bulk_dump", "-c", "author", "--force")
    assert len((tmp_path / "author.dump").read_text().splitlines()) == 6


def test_bulk_dump__serializer_model_dumps_the_serializer_data():
    models.Publisher.objects.create(name="Pub", book_count=2)
    out, _ = run_command("cqrs_bulk_dump", "--cqrs-id", "publisher", "-o", "-")
    [row] = [json.loads(line) for line in out.splitlines()[1:]]
    assert (row["title"], row["books"], row["cqrs_revision"]) == ("PUB", 2, 0)


def test_diff_master__streams_pk_and_revision_in_batches(authors):
    out, _ = run_command("cqrs_diff_master", "--cqrs-id", "author", "--batch", "3")
    header, *packages = out.splitlines()
    cqrs_id, stamp = header.split(",")
    assert cqrs_id == "author" and stamp.endswith("+00:00")
    assert [json.loads(p) for p in packages] == [
        [[authors[0].pk, 0], [authors[1].pk, 1], [authors[2].pk, 0]],
        [[authors[3].pk, 0]],
    ]


def test_diff_master__applies_the_filter_and_skips_non_sync_instances(authors):
    models.Filtered.objects.create(name="no")
    kept = models.Filtered.objects.create(name="yes")
    out, _ = run_command("cqrs_diff_master", "-cid", "filtered", "-f", "{}")
    assert [json.loads(p) for p in out.splitlines()[1:]] == [[[kept.pk, 0]]]
    only = json.dumps({"id": authors[2].pk})
    out, _ = run_command("cqrs_diff_master", "-cid", "author", "-f", only)
    assert [json.loads(p) for p in out.splitlines()[1:]] == [[[authors[2].pk, 0]]]


def test_deleted_diff_master__passes_on_keys_the_master_lacks(authors):
    gone = authors[-1].pk + 100
    stream = f"author,2024-01-01 00:00:00+00:00\n[{authors[0].pk}, {gone}]\n[{authors[1].pk}]\n"
    out, _ = run_command("cqrs_deleted_diff_master", stdin=stream)
    assert out.splitlines() == ["author,2024-01-01 00:00:00+00:00", f"[{gone}]"]


def test_diff_sync__writes_sync_events_for_the_queue_in_the_header(authors, outbox_rows):
    stream = f"author,2024-01-01 00:00:00+00:00,replica_b\n[{authors[0].pk},{authors[2].pk}]\n"
    out, _ = run_command("cqrs_diff_sync", stdin=stream)
    rows = outbox_rows()
    assert [(r["signal_type"], r["routing_key"]) for r in rows] == [
        ("SYNC", "cqrs.replica_b.author")
    ] * 2
    assert [r["instance_pk"] for r in rows] == [str(authors[0].pk), str(authors[2].pk)]
    assert out == "Done!\n2 instance(s) synced.\n2 instance(s) processed.\n"  # django-cqrs's


def test_diff_sync__no_queue_means_every_replica(authors, outbox_rows):
    header = "author,2024-01-01 00:00:00+00:00,None\n"
    run_command("cqrs_diff_sync", stdin=f"{header}[{authors[3].pk}]\n")
    assert [r["routing_key"] for r in outbox_rows()] == ["author"]


@pytest.mark.parametrize(
    "command, stream, message",
    [
        ("cqrs_diff_sync", "", "stdin is empty"),
        ("cqrs_diff_sync", "nope,2024,None\n[1]\n", "Wrong CQRS ID: nope!"),
        ("cqrs_diff_sync", "author,2024,None\n{oops\n", "Line 2 of the input is not JSON"),
        ("cqrs_deleted_diff_master", "author,2024\n{}\n", "Line 2 of the input is not a JSON list"),
    ],
)
def test_stream_commands__bad_input_is_one_clear_error(command, stream, message):
    with pytest.raises(CommandError, match=message):
        run_command(command, stdin=stream)
