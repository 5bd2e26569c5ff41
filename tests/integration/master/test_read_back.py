"""At commit, the revisions that saves wrote as F() expressions are read back in one query
per model for the rows serialised from memory, and every event carries its row's revision.

Each saved row could read its own revision back (the event builder does so for a row
the batch missed), so a batch that leaves rows out still writes the right events: only
the number of reads shows it. A transaction updating many rows would otherwise pay one
query a row at commit.
"""

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


def _revision_reads(model, queries):
    """Return the SELECTs of `model`'s table that read its cqrs_revision column."""
    table = model._meta.db_table
    return [q["sql"] for q in queries
            if q["sql"].lstrip().upper().startswith("SELECT") and table in q["sql"]
            and "cqrs_revision" in q["sql"]]


@pytest.mark.parametrize("after_own_serializer", [False, True],
                         ids=["alone", "after-a-row-with-its-own-serializer"])
def test_commit__reads_back_the_revisions_of_many_updated_rows_in_one_query(
        outbox_rows, after_own_serializer):
    """Five authors updated in one transaction: one read of their five revisions, five
    SAVEs each at revision 1. A row of a model with its own serializer (which reads the
    row itself) queued first does not stop the batch for the rows after it."""
    publisher = models.Publisher.objects.create(name="p")
    authors = [models.Author.objects.create(name=f"a{i}") for i in range(5)]
    with CaptureQueriesContext(connections["default"]) as ctx, transaction.atomic():
        if after_own_serializer:
            publisher.name = "q"
            publisher.save()
        for author in authors:
            author.name += "!"
            author.save()
    # One read; none on Django 6, whose save() takes the F() values back with RETURNING.
    assert len(_revision_reads(models.Author, ctx.captured_queries)) <= 1
    saves = [r["body"] for r in outbox_rows()
             if r["body"]["cqrs_id"] == "author" and r["body"]["instance_data"]["name"][-1:] == "!"]
    assert sorted((b["instance_pk"], b["instance_data"]["cqrs_revision"]) for b in saves) == [
        (a.pk, 1) for a in sorted(authors, key=lambda a: a.pk)]
    if after_own_serializer:
        published = [r["body"] for r in outbox_rows() if r["body"]["cqrs_id"] == "publisher"]
        assert [b["instance_data"]["title"] for b in published] == ["P", "Q"]
