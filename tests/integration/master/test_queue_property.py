"""One transaction's event queue under any mix of saves, copies and deletes.

Within one transaction a few instances are saved with new names, copied the Django way
(`pk = None`, saved again: the instance then stands for the new row), and deleted, in
any order. After the commit the outbox must tell each row's story as the database ends
it: a row that exists has its last event a SAVE of exactly what the row holds, a row
deleted in the transaction has its last event a DELETE, and no event of one row carries
another row's data.
"""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

STEPS = st.lists(
    st.tuples(st.sampled_from(["save", "copy", "delete"]), st.integers(0, 2)),
    min_size=1, max_size=8,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_saves_copies_and_deletes_in_one_transaction__each_rows_last_event_is_its_end(steps):
    OutboxEvent.objects.all().delete()
    models.Author.objects.all().delete()
    handles = [models.Author.objects.create(name=f"start {i}") for i in range(3)]
    deleted = set()
    with transaction.atomic():
        for number, (step, which) in enumerate(steps):
            author = handles[which]
            if author.pk is None:  # deleted through this handle earlier: nothing to do
                continue
            if step == "save":
                author.name = f"saved {number}"
                author.save()
            elif step == "copy":
                author.pk, author._state.adding, author.name = None, True, f"copy {number}"
                author.save()
            else:
                deleted.add(author.pk)
                author.delete()
    rows = {str(a.pk): a for a in models.Author.objects.all()}
    last = {}
    for event in OutboxEvent.objects.filter(cqrs_id="author").order_by("id"):
        body = json.loads(event.payload)
        assert str(body["instance_data"]["id"]) == event.instance_pk
        last[event.instance_pk] = (event.signal_type, body["instance_data"])
    for pk, row in rows.items():
        signal, data = last[pk]
        assert (signal, data["name"], data["cqrs_revision"]) == (
            "SAVE", row.name, row.cqrs_revision)
    for pk in deleted:
        assert last[str(pk)][0] == "DELETE"
