"""Every statement of a drain reads no more than its batch, whatever the statistics say.

The relay drains a backlog inserted just before it starts, on a table whose statistics
describe something else: empty (analysed before the backlog arrived), a drained history
with nothing pending (analysed after the last drain, dead rows left behind), or a large
backlog that has since been published (analysed while it waited).
Autovacuum is off for the table, so nothing corrects the statistics meanwhile. Each
statement the store runs is first run under EXPLAIN (ANALYZE, BUFFERS) in a transaction
that is rolled back, then for real; every plan must read a bounded number of rows and
buffers per statement, a small multiple of the batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.core.urls import parse_broker_url
from cqrs_outbox.store import dbapi, postgresql
from relay import engine, pika_publisher
from tests.integration.relay import support

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
]

BATCH = 200  # events per batch in these drains
BACKLOG = 20_000  # pending events the relay finds when it starts
HISTORY = 40_000  # published events already in the table in the "drained" case
ROWS_PER_BATCH = 3  # rows a statement may read, as a multiple of the batch
BUFFERS_PER_BATCH = 100  # buffers a statement may touch, as a multiple of the batch: a
# deleted or updated row touches heap and index pages that a hot cache or dead tuples make
# vary by run; a scan past the batch touches tens of thousands more
T = contract.OUTBOX_TABLE


@dataclass(frozen=True)
class Explained:
    sql: str
    rows_read: int  # rows the scans produced or filtered away, over all their loops
    buffers: int
    plan: dict


class ExplainingDatabase(dbapi.Database):
    """Run every statement once under EXPLAIN ANALYZE (rolled back), then for real."""

    explained: list[Explained]

    def execute(self, sql: str, params: Any = ()) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", tuple(params))
        [[document]] = cursor.fetchall()
        cursor.execute("ROLLBACK")
        plan = (document if isinstance(document, list) else json.loads(document))[0]
        self.explained.append(Explained(sql, _rows_read(plan["Plan"]),
                                        _buffers(plan["Plan"]), plan))
        return super().execute(sql, params)


def _rows_read(node: dict) -> int:
    own = 0
    if "Relation Name" in node or node["Node Type"] == "Bitmap Index Scan":
        per_loop = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0))
        own = int(per_loop * node.get("Actual Loops", 1))
    if node["Node Type"] == "ModifyTable":
        own = 0  # its rows are the ones its input scan produced
    return own + sum(_rows_read(child) for child in node.get("Plans", []))


def _outline(node: dict, depth: int = 1) -> str:
    """Return the plan's nodes, one a line: type, relation or index, rows and loops."""
    where = node.get("Index Name") or node.get("Relation Name") or ""
    line = (f"{'  ' * depth}{node['Node Type']} {where}: {node.get('Actual Rows', 0)} rows "
            f"(+{node.get('Rows Removed by Filter', 0)} filtered) x{node.get('Actual Loops', 1)}")
    return "\n".join([line] + [_outline(child, depth + 1) for child in node.get("Plans", [])])


def _buffers(node: dict) -> int:
    return int(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))


def _analyse_empty() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {T}")


def _analyse_drained_history() -> None:
    """Leave published history behind, dead row versions included, analysed as such."""
    support.write_events(("history", pk, 0) for pk in range(HISTORY))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {T} SET status = %s, published_at = now() - interval '1 hour'",
                       (contract.STATUS_PUBLISHED,))
        cursor.execute(f"ANALYZE {T}")


def _analyse_full_backlog() -> None:
    """Analyse while a backlog waits, then drain it behind the statistics' back."""
    support.write_events(("history", pk, 0) for pk in range(HISTORY))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {T}")
        cursor.execute(f"UPDATE {T} SET status = %s, published_at = now() - interval '1 hour'",
                       (contract.STATUS_PUBLISHED,))


@pytest.fixture
def frozen_statistics():
    """Keep autovacuum away from the outbox for the test: statistics stay as they are."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {T} SET (autovacuum_enabled = false)")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {T} RESET (autovacuum_enabled)")


def _drain(exchange: str) -> tuple[engine.Stats, list[Explained]]:
    explained: list[Explained] = []
    opened: list[dbapi.Database] = []

    def connect() -> dbapi.Database:
        plain = store.connect(support.database_url())
        db = ExplainingDatabase(plain.connection, plain.dialect, plain.paramstyle)
        db.explained = explained
        opened.append(db)
        return db

    publisher = pika_publisher.PikaPublisher(parse_broker_url(support.BROKER_URL), exchange)
    config = engine.Config(batch_size=BATCH, listen=False, max_attempts=1, retention=0.0,
                           purge_batch_size=BATCH, owner=support.unique("plans"))
    try:
        stats = engine.Relay(connect, publisher, config).run(once=True)
    finally:
        for db in opened:  # psycopg 3 warns about a connection left to the collector
            db.close()
    return stats, explained


@pytest.mark.parametrize(
    "statistics",
    [_analyse_empty, _analyse_drained_history, _analyse_full_backlog],
    ids=["stats_say_empty", "stats_say_drained_history", "stats_say_all_pending"],
)
def test_drain__no_statement_reads_more_than_its_batch_on_a_fresh_backlog(
    statistics, frozen_statistics, exchange, collector, refusing_route
):
    statistics()
    [_unroutable, nacked, refused] = support.write_events(
        [("nobody_binds", 1, 0), ("refused_here", 1, 0), ("author", -1, 0)]
    )
    with connection.cursor() as cursor:  # longer than AMQP allows: refused, never sent
        cursor.execute(f"UPDATE {T} SET routing_key = %s WHERE id = %s", ("k" * 256, refused))
    support.write_events(("author", pk, 0) for pk in range(BACKLOG))

    stats, explained = _drain(exchange)

    assert (stats.published, stats.returned, stats.failed) == (BACKLOG, 1, 1)
    assert stats.nacked >= 1
    assert stats.purged > 0  # the purge statements ran (retention 0) and are checked too
    statements = {_kind(e.sql) for e in explained}
    assert {"read_pending", "mark_published", "mark_returned", "mark_refused", "mark_nacked",
            "purge", "purge_delete"} <= statements
    too_wide = [
        f"{_kind(e.sql)}: {e.rows_read} rows, {e.buffers} buffers\n{_outline(e.plan['Plan'])}"
        for e in explained
        if e.rows_read > ROWS_PER_BATCH * BATCH or e.buffers > BUFFERS_PER_BATCH * BATCH
    ]
    assert not too_wide, f"{len(too_wide)} statements read past their batch:\n" + "\n".join(
        too_wide[:2]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, status FROM {T} WHERE status <> %s ORDER BY id",
                       (contract.STATUS_PUBLISHED,))
        assert cursor.fetchall() == [(nacked, contract.STATUS_PENDING),
                                     (refused, contract.STATUS_FAILED)]


def _kind(sql: str) -> str:
    """Name the store function a statement comes from, for the failure message."""
    known = {
        postgresql.read_pending_sql(store._PENDING_COLUMNS): "read_pending",
        store._PURGE_WINDOW: "purge",
    }
    if sql in known:
        return known[sql]
    if sql.startswith(f"DELETE FROM {T}"):
        return "purge_delete"
    if sql.startswith(f"UPDATE {T} SET status = %s, published_at = %s, last_error = '' WHERE"):
        return "mark_published"
    if sql.startswith(f"UPDATE {T} SET status = %s, published_at = %s, returned_at = %s"):
        return "mark_returned"
    if sql.startswith(f"UPDATE {T} SET last_error = %s, available_at = %s WHERE id = ANY"):
        return "mark_nacked"
    if sql.startswith(f"UPDATE {T} SET attempts = attempts + 1"):
        return "mark_refused"
    return sql.split(" WHERE")[0][:60]


def test_explaining_database__counts_the_rows_a_full_scan_reads(frozen_statistics):
    """The yardstick itself: a statement that must read the whole backlog is caught."""
    support.write_events(("author", pk, 0) for pk in range(2 * BATCH))
    plain = store.connect(support.database_url())
    db = ExplainingDatabase(plain.connection, plain.dialect, plain.paramstyle)
    db.explained = []
    try:
        db.fetchall(f"SELECT count(*) FROM {T} WHERE payload LIKE %s", ("%author%",))
    finally:
        db.close()
    [explained] = db.explained
    assert explained.rows_read == 2 * BATCH



def test_outbox_table__asks_autovacuum_to_come_by_rows_changed_not_table_size():
    from importlib import import_module

    migration = import_module("cqrs_outbox.migrations.0008_outbox_autovacuum")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (T,))
        [options] = cursor.fetchone()
    applied = dict(option.split("=", 1) for option in options)
    assert {k: float(v) for k, v in applied.items() if k in migration.SETTINGS} == {
        k: float(v) for k, v in migration.SETTINGS.items()
    }


def test_returned_events__counted_and_filtered_on_their_index_not_the_history():
    """The admin's 'returned (unroutable)' filter and the counts per routing key read the
    returned rows, not the published history around them."""
    from cqrs_outbox.models import OutboxEvent

    ids = support.write_events(("author", pk, 0) for pk in range(BACKLOG))
    returned = ids[::4000]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {T} SET status = %s, published_at = now()",
                       (contract.STATUS_PUBLISHED,))
        cursor.execute(f"UPDATE {T} SET returned_at = now() WHERE id = ANY(%s)", (returned,))
        cursor.execute(f"ANALYZE {T}")
    admin_page = OutboxEvent.objects.filter(returned_at__isnull=False).order_by("-id")[:100]
    plans = {
        "admin filter": admin_page.explain(format="json", analyze=True),
        "admin count": OutboxEvent.objects.filter(returned_at__isnull=False).order_by()[:10001]
        .explain(format="json", analyze=True),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT routing_key, COUNT(*) FROM {T} "
            "WHERE returned_at IS NOT NULL GROUP BY routing_key ORDER BY routing_key"
        )
        plans["counts per key"] = json.dumps(cursor.fetchone()[0])
    assert [e.pk for e in admin_page] == sorted(returned, reverse=True)
    for what, text in plans.items():
        plan = json.loads(text)[0]["Plan"]
        assert _rows_read(plan) <= 2 * len(returned), f"{what}:\n{_outline(plan)}"
