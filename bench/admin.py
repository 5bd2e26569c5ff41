"""How fast the outbox admin answers with a million rows in the outbox, on PostgreSQL.

Fills the outbox of a scratch database with INSERT ... SELECT generate_series (mostly
published history, a backlog of pending rows and a few failed ones spread through the
table), runs ANALYZE as autovacuum would, then times admin pages through Django's test
client. Each page is fetched a few times; the median is printed in milliseconds.

    python bench/admin.py [--rows 1000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["CQRS_TEST_DB"] = "postgres"
os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_bench_{uuid.uuid4().hex[:8]}")
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.urls import reverse  # noqa: E402

from cqrs_outbox.core import contract  # noqa: E402

TARGET_MS = 1000  # the list page must answer faster than this
PENDING = 1000  # newest rows left pending: a relay's backlog
FAILED_EVERY = 10000  # one row in this many failed, spread over the whole table

FILL = f"""
INSERT INTO {contract.OUTBOX_TABLE} (
    cqrs_id, instance_pk, signal_type, revision, partition, routing_key, payload,
    correlation_id, status, attempts, available_at, last_error, created_at, published_at)
SELECT
    (ARRAY['author', 'publisher', 'all_fields', 'tracked'])[1 + i %% 4],
    (i / 4)::text,
    CASE WHEN i %% 50 = 0 THEN 'DELETE' ELSE 'SAVE' END,
    i %% 7,
    i %% {contract.PARTITIONS},
    (ARRAY['author', 'publisher', 'all_fields', 'tracked'])[1 + i %% 4],
    '{{"signal_type":"SAVE","cqrs_id":"author","instance_data":{{"id":' || i ||
        ',"name":"row ' || i || '","cqrs_revision":0}},"previous_data":null,' ||
        '"instance_pk":' || i || ',"correlation_id":null,"retries":0,' ||
        '"expires":null,"meta":null}}',
    'corr-' || i,
    CASE WHEN i > %(rows)s - {PENDING} THEN 'pending'
         WHEN i %% {FAILED_EVERY} = 0 THEN 'failed'
         ELSE 'published' END,
    CASE WHEN i %% {FAILED_EVERY} = 0 THEN 10 ELSE 1 END,
    now(),
    CASE WHEN i %% {FAILED_EVERY} = 0 THEN 'NOT_FOUND - no exchange' ELSE '' END,
    now() - make_interval(secs => %(rows)s - i),
    CASE WHEN i > %(rows)s - {PENDING} THEN NULL
         ELSE now() - make_interval(secs => %(rows)s - i) END
FROM generate_series(1, %(rows)s) AS i
"""


def fill(rows: int) -> float:
    """Insert `rows` outbox rows and ANALYZE the table; return the seconds it took."""
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"rows": rows})
        cursor.execute(f"ANALYZE {contract.OUTBOX_TABLE}")
    return time.perf_counter() - start


def median_ms(client: Client, url: str, runs: int) -> tuple[float, int]:
    """Fetch `url` `runs` times; return the median time in ms and the last status code."""
    times, status = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        status = response.status_code
    return statistics.median(times), status


def pages() -> list[tuple[str, str]]:
    """Return the pages to time: (label, url)."""
    changelist = reverse("admin:cqrs_outbox_outboxevent_changelist")
    return [
        ("list, first page", changelist),
        ("list, page 50", f"{changelist}?p=50"),
        ("filter status=failed", f"{changelist}?status=failed"),
        ("filter status=pending", f"{changelist}?status=pending"),
        ("filter cqrs_id=author", f"{changelist}?cqrs_id=author"),
        ("search instance pk", f"{changelist}?q=12345"),
        ("search correlation id", f"{changelist}?q=corr-777777"),
        ("detail page", reverse("admin:cqrs_outbox_outboxevent_change", args=[500000])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="outbox rows to insert")
    parser.add_argument("--runs", type=int, default=7, help="fetches per page")
    args = parser.parse_args()
    state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        seconds = fill(args.rows)
        user = User.objects.create_superuser("bench", password="bench")
        client = Client()
        client.force_login(user)
        print(
            f"PostgreSQL {connection.pg_version // 10000}: {args.rows} outbox rows "
            f"(filled in {seconds:.1f} s); median of {args.runs} fetches per page"
        )
        list_ms = None
        for label, url in pages():
            client.get(url)  # warm the plan and template caches
            ms, status = median_ms(client, url, args.runs)
            list_ms = ms if list_ms is None else list_ms
            print(f"  {label:24} {ms:8.1f} ms   (HTTP {status})")
        verdict = "met" if list_ms < TARGET_MS else "MISSED"
        print(f"target: list page < {TARGET_MS} ms: {verdict} ({list_ms:.1f} ms)")
    finally:
        teardown_databases(state, verbosity=0)


if __name__ == "__main__":
    main()
