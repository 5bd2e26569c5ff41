"""The relay's read of pending rows asked for nothing, on every server: MySQL's read is a
UNION of one branch per partition, so no partition would be no statement at all."""

import pytest
from django.db import connections

from cqrs_outbox import store
from cqrs_outbox.core import contract
from tests.integration.relay import support

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]


def test_read_pending__for_no_partition_or_no_room_reads_nothing():
    """A relay that holds no partition, or has no room left in its batch, gets no rows
    and no error; with room, it gets the partition's row."""
    [event_id] = support.write_events([("author", 1, 0)])
    db = store.wrap(connections["default"])
    partition = contract.partition_for("author", 1)
    assert store.read_pending(db, [], 10) == []
    assert store.read_pending(db, [(partition, 0)], 0) == []
    assert [p.id for p in store.read_pending(db, [(partition, 0)], 10)] == [event_id]
