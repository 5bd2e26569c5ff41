"""Whatever the order and repetition of delivery, a replica ends equal to the master.

Hypothesis draws the history of a few rows (saves at increasing revisions, SYNCs of
some of them, maybe a final delete), delivers every event at least once, some twice or
more, in a random order and in random batches, through the consumer's apply path. The
replica must hold each row at its last revision, and no deleted row may come back.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqrs_outbox.core import wire
from cqrs_outbox.models import Tombstone
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import apply
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db

# 'author' is applied in bulk, 'filtered' through its own cqrs_create / cqrs_update.
MODELS = {"author": models.AuthorRef, "filtered": models.FilteredRef}


@st.composite
def histories(draw):
    """Return (events, expected final state) of up to four rows."""
    events, expected = [], {}
    for pk in range(1, draw(st.integers(1, 4)) + 1):
        cqrs_id = draw(st.sampled_from(sorted(MODELS)))
        last = draw(st.integers(0, 5))
        for revision in range(last + 1):
            events.append(ev.save(cqrs_id, pk, revision, name=f"{pk}@{revision}"))
        for revision in draw(st.lists(st.integers(0, last), max_size=3)):
            events.append(ev.sync(cqrs_id, pk, revision, name=f"{pk}@{revision}"))
        if draw(st.booleans()):
            events.append(ev.delete(cqrs_id, pk, last + 1))
        else:
            expected[(cqrs_id, pk)] = (f"{pk}@{last}", last)
    return events, expected


def _state():
    found = {("author", r.pk): (r.name, r.cqrs_revision) for r in models.AuthorRef.objects.all()}
    for r in models.FilteredRef.objects.all():
        found[("filtered", r.pk)] = (r.shout.lower(), r.cqrs_revision)
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_any_delivery_order__replica_ends_at_each_rows_last_revision(history, data):
    events, expected = history
    for model in (*MODELS.values(), Tombstone):
        model.objects.all().delete()
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivered = data.draw(st.permutations(events + repeats))
    while delivered:
        size = data.draw(st.integers(1, len(delivered)))
        batch, delivered = delivered[:size], delivered[size:]
        outcomes = apply.apply([
            (wire.validate(body), ReplicaRegistry.get_model_by_cqrs_id(body["cqrs_id"]))
            for body in batch
        ])
        assert {o.status for o in outcomes} <= {"applied", "ignored"}
    assert _state() == expected
