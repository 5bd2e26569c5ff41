"""The model master of the rules' property test, delivered to the real replica tables.

The histories of `tests.unit.replica.test_rules_property` (creations, updates, deletes,
deletes through stale instances, creations again, SYNCs, with clock readings as masters
take them) go through the consumer's apply path, every event at least once, with
duplicates, in any order and in random batches, for a model applied in bulk and one
applied through its own handlers. The replica's rows must end equal to the master's.
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
from tests.unit.replica import test_rules_property as model

pytestmark = pytest.mark.django_db


def _body(cqrs_id, event):
    fields = {} if event.signal == "DELETE" else {"name": event.data}
    return ev.body(event.signal, cqrs_id, event.pk, event.revision, event.updated, **fields)


def _rows(cqrs_id):
    if cqrs_id == "author":
        return {r.pk: (r.cqrs_revision, r.name) for r in models.AuthorRef.objects.all()}
    return {r.pk: (r.cqrs_revision, r.shout.lower()) for r in models.FilteredRef.objects.all()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=model.operations, cqrs_id=st.sampled_from(["author", "filtered"]), data=st.data())
def test_any_order_in_random_batches__replica_rows_end_equal_to_the_master(ops, cqrs_id, data):
    for table in (models.AuthorRef, models.FilteredRef, Tombstone):
        table.objects.all().delete()
    master = model.Master(gap_between_lives=True)
    for op in ops:
        master.run(*op)
    if not master.events:
        return
    copies = data.draw(st.lists(st.sampled_from(master.events), max_size=6))
    delivered = data.draw(st.permutations(master.events + copies))
    replica_model = ReplicaRegistry.get_model_by_cqrs_id(cqrs_id)
    while delivered:
        size = data.draw(st.integers(1, len(delivered)))
        batch, delivered = delivered[:size], delivered[size:]
        outcomes = apply.apply([(wire.validate(_body(cqrs_id, e)), replica_model)
                                for e in batch])
        assert {o.status for o in outcomes} <= {"applied", "ignored"}, outcomes
    expected = {pk: (revision, data.lower()) for pk, (revision, data) in master.final().items()}
    assert _rows(cqrs_id) == expected
