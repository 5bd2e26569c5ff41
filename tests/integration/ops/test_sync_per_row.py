"""SYNC goes through a model's own cqrs_sync() and to_cqrs_dict(); a failing row is isolated.

django-cqrs's cqrs_sync command calls `instance.cqrs_sync()` per row, prints
"Sync record failed for pk=<pk>: <Error>: <message>" for a row that raises, goes on with
the rest and closes with "Done!\\n<N> instance(s) synced.\\n<M> instance(s) processed.".
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.ops import sync
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


def _run(command, *args, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err, **kwargs)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_sync__overridden_cqrs_sync_failing_row_is_reported_and_others_synced(outbox_rows):
    rows = [models.OwnDict.objects.create(name=n) for n in ("one", "bad apple", "three")]
    OutboxEvent.objects.all().delete()
    out, _, error = _run("cqrs_sync", "--cqrs-id", "own_dict", "-f", "{}")
    bad = rows[1].pk
    assert f"Sync record failed for pk={bad}: ValueError: cannot sync bad apple\n" in out
    assert out.endswith("Done!\n2 instance(s) synced.\n3 instance(s) processed.\n")
    assert error is not None and error.returncode == 1
    synced = outbox_rows()
    assert [r["instance_pk"] for r in synced] == [str(rows[0].pk), str(rows[2].pk)]
    assert [r["body"]["instance_data"]["shout"] for r in synced] == ["ONE", "THREE"]


def test_sync__serializer_failing_row_is_isolated_within_its_batch(outbox_rows):
    rows = [models.Fragile.objects.create(name=n) for n in ("a", "b", "c")]
    models.Fragile._base_manager.filter(pk=rows[1].pk).update(name="boom now")  # no event
    OutboxEvent.objects.all().delete()
    out, _, error = _run("cqrs_sync", "--cqrs-id", "fragile", "-f", "{}")
    assert f"Sync record failed for pk={rows[1].pk}: EventBuildError: " in out
    assert "Done!\n2 instance(s) synced.\n3 instance(s) processed." in out
    assert error.returncode == 1
    assert [r["instance_pk"] for r in outbox_rows()] == [str(rows[0].pk), str(rows[2].pk)]


def test_sync_queryset__database_error_in_a_row_redoes_the_batch_without_it(outbox_rows,
                                                                             monkeypatch):
    from django.db import connection

    authors = [models.Author.objects.create(name=f"a{i}") for i in range(3)]
    OutboxEvent.objects.all().delete()
    victim = authors[1].pk
    original = models.Author.to_cqrs_dict

    def to_cqrs_dict(self, using=None, sync=False):
        if self.pk == victim:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
        return original(self, using, sync=sync)

    monkeypatch.setattr(models.Author, "to_cqrs_dict", to_cqrs_dict)
    result = sync.sync_queryset(models.Author.objects.all())
    assert (result.synced, [pk for pk, _ in result.failed]) == (2, [victim])
    assert sorted(r["instance_pk"] for r in outbox_rows()) == sorted(
        str(a.pk) for a in authors if a.pk != victim
    )


def test_sync__to_cqrs_dict_override_shapes_sync_save_and_bulk_events(outbox_rows):
    obj = models.OwnDict.objects.create(name="loud")
    models.OwnDict.cqrs.bulk_create([models.OwnDict(name="bulk")])
    obj.cqrs_sync()
    _run("cqrs_sync", "--cqrs-id", "own_dict", "-f", json.dumps({"pk": obj.pk}))
    bodies = [r["body"] for r in outbox_rows()]
    assert [(b["signal_type"], b["instance_data"]["shout"]) for b in bodies] == [
        ("SAVE", "LOUD"), ("SAVE", "BULK"), ("SYNC", "LOUD"), ("SYNC", "LOUD")
    ]


def test_diff_sync__prints_django_cqrs_lines(outbox_rows):
    authors = [models.Author.objects.create(name=f"a{i}") for i in range(3)]
    OutboxEvent.objects.all().delete()
    stream = io.StringIO(f"author,replica_q\n{json.dumps([a.pk for a in authors[:2]])}\n")
    out, err, error = _run("cqrs_diff_sync", stdin=stream)
    assert error is None
    assert out == "Done!\n2 instance(s) synced.\n2 instance(s) processed.\n"
    assert "2 SYNC event(s) written to the outbox for queue replica_q" in err
    assert {r["routing_key"] for r in outbox_rows()} == {"cqrs.replica_q.author"}


def test_bulk_dump__uses_the_models_to_cqrs_dict_override():
    models.OwnDict.objects.create(name="quiet")
    out, _, error = _run("cqrs_bulk_dump", "--cqrs-id", "own_dict", "-o", "-")
    assert error is None
    header, line = out.splitlines()
    assert header == "own_dict"
    assert json.loads(line)["shout"] == "QUIET"
