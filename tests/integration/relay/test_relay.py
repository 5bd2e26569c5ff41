"""The relay against real PostgreSQL (or MariaDB) and RabbitMQ: bodies, order, verdicts,
stop, status."""

import io
import json

import pika
import pytest
from django.core.management import call_command

from cqrs_outbox.models import OutboxEvent
from tests.integration.relay import support
from tests.support.waiting import wait_until
from tests.testproject.master import models

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.broker,
]

FAST = ("--poll-interval", "0.2", "--lease-ttl", "3")


def test_master_api_events__arrive_with_the_exact_body_in_revision_order(collector):
    authors = [models.Author.objects.create(name=f"a{i}") for i in range(5)]
    for round_ in range(3):
        for author in authors:
            author.name = f"{author.name}-{round_}"
            author.save()
    deleted_pk = authors[0].pk
    authors[0].delete()
    call_command("cqrs_relay", "--once", "--batch-size", "4", stdout=io.StringIO())
    rows = list(OutboxEvent.objects.order_by("id"))
    received = collector.collect([r.id for r in rows])
    assert {r.event_id: r.body for r in received} == {r.id: r.payload.encode() for r in rows}
    assert {r.status for r in OutboxEvent.objects.all()} == {"published"}
    for item in received:
        assert item.properties.delivery_mode == 2
        assert item.properties.content_type == "text/plain"
        assert item.routing_key == "author"
    order = support.revisions_by_row(received)
    assert order[("author", authors[1].pk)] == [0, 1, 2, 3]
    assert order[("author", deleted_pk)] == [0, 1, 2, 3, 4]  # the DELETE comes last
    last = [json.loads(r.body) for r in received if json.loads(r.body)["instance_pk"] == deleted_pk]
    assert last[-1]["signal_type"] == "DELETE"


def test_standalone_relay__drains_what_the_master_wrote_and_stops_on_sigterm(
    collector, relays
):
    ids = support.write_events(("author", pk, rev) for rev in range(3) for pk in range(50))
    relay = relays("standalone", *FAST)
    received = collector.collect(ids)
    assert all(v == [0, 1, 2] for v in support.revisions_by_row(received).values())
    wait_until(lambda: support.outbox_counts() == {"published": len(ids)})
    assert relay.terminate() == 0
    assert support.leases_by_owner() == {}
    assert "stopped: 150 published" in relay.log()


@support.notify_only
def test_notify__wakes_a_relay_that_polls_only_every_ten_minutes(collector, relays):
    relays("listener", "--poll-interval", "600")
    wait_until(support.leases_by_owner, what="the relay listening, leases taken")
    author = models.Author.objects.create(name="wake up")
    [event] = OutboxEvent.objects.filter(instance_pk=str(author.pk))
    collector.collect([event.id], timeout=30)


def test_unroutable_and_nacked_events__are_recorded_on_their_rows(
        exchange, collector, refusing_route):
    """A queue that rejects publishes (full) nacks: its event waits, the rest goes on."""
    from cqrs_outbox import drain

    [unroutable, nacked, fine] = support.write_events(
        [("nobody_binds", 1, 0), ("refused_here", 1, 0), ("author", 1, 0)]
    )
    stats = drain.build_relay(max_attempts=1).run(seconds=3)
    collector.collect([fine])
    rows = {e.id: e for e in OutboxEvent.objects.all()}
    assert rows[unroutable].status == "published"
    assert "NO_ROUTE" in rows[unroutable].last_error
    assert rows[nacked].status == "pending" and rows[nacked].attempts == 0
    assert "nacked" in rows[nacked].last_error
    assert rows[fine].status == "published" and rows[fine].last_error == ""
    assert stats.returned == 1 and stats.failed == 0 and stats.nacked >= 2  # tried again


def test_routing_key_too_long_for_amqp__fails_without_blocking_the_rest(collector):
    from cqrs_outbox import drain

    [too_long, fine] = support.write_events([("author", 1, 0), ("author", 2, 0)])
    # A SYNC aimed at a queue whose name makes `cqrs.<queue>.<id>` exceed AMQP's 255 bytes.
    OutboxEvent.objects.filter(id=too_long).update(routing_key=f"cqrs.{'q' * 300}.author")
    drain.build_relay(max_attempts=1).run(once=True)
    collector.collect([fine])
    row = OutboxEvent.objects.get(id=too_long)
    assert row.status == "failed" and "cannot be encoded" in row.last_error


def test_status_command__shows_pending_failed_lag_and_owners(relays, collector):
    support.write_events([("author", 1, 0)])
    OutboxEvent.objects.update(status="failed")
    support.write_events([("author", 2, 0)])
    out = _status()
    assert "pending: 1" in out and "failed: 1" in out
    assert "oldest pending age: " in out and "oldest pending age: -" not in out
    relays("status-probe", *FAST)
    wait_until(lambda: "status-probe: 64 partitions (0-63)" in _status())


def _status():
    out = io.StringIO()
    call_command("cqrs_relay", "--status", stdout=out)
    return out.getvalue()


def test_drain_task__runs_the_relay_for_a_bounded_time(collector):
    from cqrs_outbox import tasks

    ids = support.write_events(("author", pk, 0) for pk in range(20))
    stats = tasks.drain_outbox(seconds=30, once=True)
    collector.collect(ids)
    assert stats["published"] == 20


def test_purge_task__deletes_published_events_past_retention_only(settings):
    from cqrs_outbox import tasks

    old, fresh, pending = support.write_events([("author", i, 0) for i in range(3)])
    OutboxEvent.objects.filter(id=old).update(
        status="published", published_at="2000-01-01T00:00:00Z"
    )
    OutboxEvent.objects.filter(id=fresh).update(
        status="published", published_at="2999-01-01T00:00:00Z"
    )
    assert tasks.purge_outbox() == 1
    assert sorted(OutboxEvent.objects.values_list("id", flat=True)) == [fresh, pending]


def test_broker_url_with_wrong_password__one_line_error_without_it(exchange):
    bad = "amqp://guest:Wr0ngSecret@127.0.0.1:5672/%2F"
    result = _cli("--database-url", support.database_url(), "--broker-url", bad, "--once")
    assert result.returncode == 1  # the broker is there; the login is wrong
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refused the login" in result.stderr
    assert "Wr0ngSecret" not in result.stderr + result.stdout


def test_passwords__never_appear_in_debug_logs_or_status(collector, exchange):
    support.write_events([("author", 1, 0)])
    with support.database_url_with_password("Db-S3cret") as url:
        run = _cli("--database-url", url, "--broker-url", support.BROKER_URL, "--exchange",
                   exchange, "--once", "--log-level", "DEBUG")
        status = _cli("--database-url", url, "--status")
    assert run.returncode == 0 and status.returncode == 0, run.stderr + status.stderr
    assert "published" in run.stderr and "pending: 0" in status.stdout
    everything = run.stdout + run.stderr + status.stdout + status.stderr
    for secret in ("Db-S3cret", "guest:guest"):
        assert secret not in everything


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True,
                          text=True, timeout=60, cwd=support.ROOT)


def test_collector_queue__is_a_plain_durable_queue(collector):
    # Guard for the helper itself: a passive declare must succeed.
    collector.channel.queue_declare(collector.queue, passive=True)
    assert isinstance(collector.connection, pika.BlockingConnection)


def test_sqlite_outbox__standalone_relay_polls_and_drains_it(tmp_path, exchange, collector):
    from tests.unit.relay.conftest import Outbox

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    ids = [outbox.add("author", pk, rev) for rev in range(2) for pk in range(30)]
    result = _cli("--database-url", outbox.url, "--broker-url", support.BROKER_URL,
                  "--exchange", exchange, "--once", "--batch-size", "7")
    assert result.returncode == 0, result.stderr
    received = collector.collect(ids)
    assert all(v == [0, 1] for v in support.revisions_by_row(received).values())
    assert set(outbox.statuses()) == {"published"}
    outbox.db.close()


def test_manage_py_cqrs_relay__drains_and_exits_0_on_sigterm(collector, exchange):
    import os
    import signal
    import subprocess
    import sys

    from django.db import connection

    ids = support.write_events(("author", pk, 0) for pk in range(40))
    env = dict(os.environ, CQRS_TEST_DB_NAME=connection.settings_dict["NAME"],
               CQRS_TEST_EXCHANGE=exchange, DJANGO_SETTINGS_MODULE="tests.testproject.settings")
    command = subprocess.Popen(
        [sys.executable, "-m", "django", "cqrs_relay", "--poll-interval", "0.2"],
        env=env, cwd=support.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        collector.collect(ids)
    finally:
        command.send_signal(signal.SIGTERM)
        out, err = command.communicate(timeout=60)
    assert command.returncode == 0, err
    assert "published 40" in out
    assert support.leases_by_owner() == {}


def test_two_standalone_relays__share_the_partitions_and_keep_each_rows_order(
    collector, relays
):
    ids = support.write_events(("author", pk, rev) for rev in range(3) for pk in range(100))
    relays("one", *FAST)
    relays("two", *FAST)
    received = collector.collect(ids)
    wait_until(lambda: support.outbox_counts() == {"published": len(ids)})
    orders = support.revisions_by_row(received)
    assert len(orders) == 100
    assert all(support.first_seen(order) == [0, 1, 2] for order in orders.values())

    def shared():
        held = support.leases_by_owner()
        return set(held) == {"one", "two"} and held["one"] | held["two"] == set(range(64))

    wait_until(shared, what="both relays holding partitions, all 64 held")
    held = support.leases_by_owner()
    assert held["one"].isdisjoint(held["two"])


def test_purge__deletes_in_batches_of_the_size_asked_oldest_first(settings):
    import datetime

    from django.db import connections

    from cqrs_outbox import store
    from relay import engine

    ids = support.write_events([("author", i, 0) for i in range(5)])
    OutboxEvent.objects.filter(id__in=ids).update(
        status="published", published_at="2000-01-01T00:00:00Z"
    )
    before = datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc)
    assert engine.purge(store.wrap(connections["default"]), before, batch_size=2, rounds=1) == 2
    assert sorted(OutboxEvent.objects.values_list("id", flat=True)) == ids[2:]
    assert engine.purge(store.wrap(connections["default"]), before, batch_size=2, rounds=5) == 3
    assert not OutboxEvent.objects.exists()
