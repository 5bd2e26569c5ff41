"""On MariaDB the claim reads one bounded range of the pending index per partition."""

import json

import pytest
from django.db import connection, connections

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.store import mysql
from tests.integration.relay import support

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]


def _tables(node):
    if isinstance(node, dict):
        if isinstance(node.get("table"), dict):
            yield node["table"]
        for child in node.values():
            yield from _tables(child)
    elif isinstance(node, list):
        for child in node:
            yield from _tables(child)


def test_claim__each_partition_is_a_range_scan_of_the_pending_index():
    if connection.vendor != "mysql":
        pytest.skip("the plan of MySQL's claim statement")
    support.write_events(("author", pk, 0) for pk in range(200))
    db = store.wrap(connections["default"])
    db.rowcount("ANALYZE TABLE cqrs_outbox_event")
    cursors = [(p, 0) for p in range(5)]
    sql = mysql.read_pending_sql("id, partition, routing_key, payload", len(cursors))
    params = []
    for rank, (partition, after) in enumerate(cursors):
        params += [rank, contract.STATUS_PENDING, partition, after, 10]
    [(plan,)] = db.fetchall("EXPLAIN FORMAT=JSON " + sql, [*params, 10])
    branches = [t for t in _tables(json.loads(plan)) if t.get("table_name") == "cqrs_outbox_event"
                and t.get("key") == "cqrs_outbox_pending_idx"]
    assert len(branches) == len(cursors)
    assert {t["access_type"] for t in branches} == {"range"}
    assert all(t["used_key_parts"] == ["status", "partition", "id"] for t in branches)
