"""A real three-node RabbitMQ cluster loses nodes under a running relay and consumer.

The virtual host's default queue type is quorum, so the replica's queues, declared as
django-cqrs declares them, are quorum queues; a policy gives the work queue its
dead-letter queue as target. The relay and the consumer are given every node's address.

Figures: the publish stall of each fault is the longest gap between two consecutive
`published_at` of the outbox while the master writes steadily. The leader election is
measured beside it: the time until a fresh connection to a surviving node gets a
publish confirmed on a quorum queue whose leader was on the faulted node. Both are
printed and recorded; the assertion leaves a generous margin over "5 s past the
election", so a noisy machine does not fail it, while a relay stuck on a nacking
channel until the node returns (20 s and more) does.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from django.db import connection, connections

from cqrs_outbox.models import OutboxEvent
from tests.acceptance.replica import support as replica_support
from tests.faults.cluster.rabbitmq import Cluster
from tests.integration.relay import support
from tests.integration.replica import events as ev
from tests.support.processes import Service
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

VHOST = "cqrs_cluster"
HEARTBEAT = 5  # seconds, in the URLs the relay and the consumer get
STALL_PAST_ELECTION = 5.0  # seconds: what the relay may add to the election at most
SLACK = 5.0  # seconds more, for a loaded machine
RESUME_WAIT = 60.0  # seconds a faulted node stays down at most while publishing resumes
LIMITED = 300  # events in the delivery-limit test


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as nodes:
        nodes.ctl(0, "add_vhost", VHOST, "--default-queue-type", "quorum")
        nodes.ctl(0, "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        yield nodes


def _dead_letter_policy(cluster: Cluster, queue: str, **extra: object) -> None:
    """The Operations page's policy: dead letters of `queue` go to its dead-letter queue."""
    definition = {"dead-letter-exchange": "", "dead-letter-routing-key": f"dead_letter_{queue}",
                  "dead-letter-strategy": "at-least-once", "overflow": "reject-publish",
                  **extra}
    cluster.ctl(0, "set_policy", "-p", VHOST, "--apply-to", "queues", f"dl-{queue}",
                f"^{re.escape(queue)}$", json.dumps(definition))


def _consumer_env(cluster: Cluster, exchange: str, queue: str) -> dict[str, str]:
    return {"CQRS_BROKER_URL": cluster.url(VHOST, f"heartbeat={HEARTBEAT}"),
            "CQRS_TEST_EXCHANGE": exchange, "CQRS_TEST_QUEUE": queue,
            "CQRS_TEST_DB_NAME": connection.settings_dict["NAME"],
            "CQRS_TEST_LOG_LEVEL": "INFO"}


def _consumer(cluster: Cluster, log_dir: Path, exchange: str, queue: str) -> Service:
    argv = [sys.executable, "-m", "django", "cqrs_consume", "--settings=tests.testproject.settings"]
    return Service("consumer", argv, _consumer_env(cluster, exchange, queue), log_dir)


def _relay(cluster: Cluster, log_dir: Path, exchange: str) -> Service:
    argv = [sys.executable, "-m", "relay", "--database-url", support.database_url(),
            "--broker-url", cluster.url(VHOST, f"heartbeat={HEARTBEAT}"), "--exchange",
            exchange, "--poll-interval", "0.1", "--batch-size", "200", "--owner", "relay",
            "--log-level", "INFO"]
    return Service("relay", argv, {}, log_dir)


def _logged(service: Service, text: str) -> bool:
    return text in service.log()


class Writer(threading.Thread):
    """Create master rows through the model API, steadily, until stopped."""

    def __init__(self) -> None:
        super().__init__(name="writer", daemon=True)
        self.stopping = threading.Event()
        self.created = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                master.Author.objects.create(name=f"author {self.created}")
                self.created += 1
                self.stopping.wait(0.02)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connections.close_all()


def _now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def _published_after(moment) -> bool:
    """Whether an event written after `moment` is published: publishing goes on."""
    return OutboxEvent.objects.filter(created_at__gt=moment, status="published").exists()


def _stall(since, until) -> float:
    """Return the longest gap between consecutive publishes from the last one before the
    fault (`since`) on (seconds)."""
    published = OutboxEvent.objects.filter(status="published")
    last = published.filter(published_at__lt=since).order_by("-published_at").first()
    stamps = [last.published_at] + sorted(published.filter(
        published_at__gte=since, published_at__lte=until).values_list("published_at", flat=True))
    return max((b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False))


def _probe_queue(cluster: Cluster, node: int) -> str:
    """Declare a quorum queue whose leader is `node` (leaders start where declared)."""
    name = support.unique("election_probe")
    probe = pika.BlockingConnection(pika.URLParameters(cluster.node_url(node, VHOST)))
    try:
        probe.channel().queue_declare(name, durable=True)
    finally:
        probe.close()
    assert cluster.leader(node, VHOST, name) == node
    return name


def _election(cluster: Cluster, survivor: int, queue: str, faulted_at: float) -> float:
    """Return the seconds from the fault until a fresh connection's publish is confirmed."""
    while True:
        try:
            link = pika.BlockingConnection(pika.URLParameters(
                cluster.node_url(survivor, VHOST) + "?socket_timeout=2"))
            try:
                channel = link.channel()
                channel.confirm_delivery()
                channel.basic_publish("", queue, b"probe", mandatory=True)
                return time.monotonic() - faulted_at
            finally:
                link.close()
        except pika.exceptions.AMQPError:
            if time.monotonic() - faulted_at > RESUME_WAIT:
                raise
            time.sleep(0.05)


def _relay_node(cluster: Cluster, relay: Service) -> int:
    """Return the node the relay last connected to, from its own log line."""
    found = re.findall(r"connected to broker node amqp://guest:\*\*\*@127\.0\.0\.1:(\d+)/",
                       relay.log())
    assert found, relay.log()
    return cluster.ports.index(int(found[-1]))


def _fault(cluster, relay, node, how, record_property, name):
    """Fault `node` (kill or stop) mid-drain; return (stall, election) in seconds."""
    survivor = next(i for i in range(len(cluster.ports)) if i != node)
    probe = _probe_queue(cluster, node)
    before = _now()
    started = time.monotonic()
    if how == "kill":
        cluster.kill(node)
    else:
        cluster.stop(node)
    at = _now()
    election = _election(cluster, survivor, probe, started)
    wait_until(lambda: _published_after(at), what=f"publishing after the {name}",
               timeout=RESUME_WAIT)
    time.sleep(1.0)  # a little steady publishing after the resume, to close the window
    stall = _stall(before, _now())
    cluster.start(node)
    record_property(f"{name}_stall_seconds", round(stall, 2))
    record_property(f"{name}_election_seconds", round(election, 2))
    print(f"\n{name}: publishing stalled {stall:.2f}s; election {election:.2f}s "
          f"(relay on node {_relay_node(cluster, relay)})")
    return stall, election


def test_node_faults__publishing_resumes_after_the_election_nothing_lost_none_failed(
        cluster, tmp_path, record_property):
    exchange, queue = support.unique("cluster_ex"), support.unique("cluster_q")
    _dead_letter_policy(cluster, queue)
    consumer = _consumer(cluster, tmp_path, exchange, queue).start()
    relay = _relay(cluster, tmp_path, exchange)
    writer = Writer()
    try:
        wait_until(lambda: _logged(consumer, f"Queue {queue} on RabbitMQ"), what="consuming")
        assert f"Queue {queue} on RabbitMQ 3.10.8: quorum queue" in consumer.log()
        assert cluster.leader(1, VHOST, queue) == 0  # the consumer declared it on node 0
        relay.start()
        writer.start()
        wait_until(lambda: replica.AuthorRef.objects.count() > 50, what="events flowing")
        assert _relay_node(cluster, relay) == 0

        figures = [_fault(cluster, relay, 0, "kill", record_property, "kill9_relay_node")]
        stopped = _relay_node(cluster, relay)
        figures.append(_fault(cluster, relay, stopped, "stop", record_property,
                              "gentle_stop_relay_node"))
        leader = _leader_away_from_the_relay(cluster, relay, queue)
        figures.append(_fault(cluster, relay, leader, "kill", record_property,
                              "kill9_leader_node"))
    except BaseException:
        for service in (relay, consumer):
            service.kill()
        raise
    finally:
        writer.stopping.set()
        if writer.is_alive():
            writer.join(30)
    assert writer.error is None, writer.error
    written = master.Author.objects.count()
    wait_until(lambda: replica.AuthorRef.objects.count() == written,
               what="every row on the replica", timeout=120)
    assert not OutboxEvent.objects.exclude(status="published").exists()
    assert relay.terminate(30) == 0 and consumer.terminate(30) == 0
    assert set(master.Author.objects.values_list("id", "name")) == set(
        replica.AuthorRef.objects.values_list("id", "name"))
    with pika.BlockingConnection(pika.URLParameters(cluster.node_url(0, VHOST))) as link:
        dead = link.channel().queue_declare(f"dead_letter_{queue}", passive=True)
        assert dead.method.message_count == 0
    for stall, election in figures:
        assert stall <= election + STALL_PAST_ELECTION + SLACK, figures
    log = relay.log()
    # Nacks are never one line per event: one line as they begin, one as they end.
    assert len(re.findall(r"nacked", log)) <= 4 * len(figures), log
    print(f"\n{written} rows written and replicated through three faults; stalls and "
          f"elections (s): {[(round(s, 2), round(e, 2)) for s, e in figures]}")


def _leader_away_from_the_relay(cluster: Cluster, relay: Service, queue: str) -> int:
    """Return the work queue's leader, with the relay on another node (moved if need be)."""
    for _ in range(len(cluster.ports)):
        leader = cluster.leader(0, VHOST, queue)
        if _relay_node(cluster, relay) != leader:
            return leader
        for line in cluster.ctl(leader, "list_connections", "-q", "--no-table-headers",
                                "pid", "client_properties").splitlines():
            if "cqrs-outbox-relay" in line:
                cluster.ctl(leader, "close_connection", line.split("\t")[0], "test: move")
        wait_until(lambda lead=leader: _relay_node(cluster, relay) != lead,
                   what="the relay on another node")
    raise AssertionError("the relay stays on the leader's node")


def _holding_all(client, queue: str) -> bool:
    """Whether a consumer is on `queue` and no message waits: it holds them all (exact
    figures of the declaration's answer, not the broker's periodic statistics)."""
    answer = client.channel.queue_declare(queue, passive=True).method
    return answer.consumer_count == 1 and answer.message_count == 0


def test_delivery_limit__a_breach_lands_in_the_dead_letter_queue_with_its_reason(
        cluster, tmp_path):
    exchange, queue = support.unique("limit_ex"), support.unique("limit_q")
    _dead_letter_policy(cluster, queue, **{"delivery-limit": 1})
    consumer = _consumer(cluster, tmp_path, exchange, queue).start()
    wait_until(lambda: _logged(consumer, f"Queue {queue} on RabbitMQ"), what="consuming")
    # A limit a policy sets is out of AMQP's sight: the worker says so.
    assert (f"Queue {queue} on RabbitMQ 3.10.8: quorum queue, delivery limit none as an "
            "argument (a policy may set one; AMQP cannot read policies)") in consumer.log()
    pks = range(10**6, 10**6 + LIMITED)
    client = replica_support.Broker(exchange, cluster.node_url(0, VHOST))
    table = replica.AuthorRef._meta.db_table
    blocker = connections.create_connection("default")  # holds the replica's table
    try:
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        for pk in pks:
            client.publish(ev.save("author", pk, 0, name=f"limited {pk}"), "author")
        for _ in range(2):  # the consumer crashes twice while it holds them all
            wait_until(lambda: _holding_all(client, queue),
                       what="the consumer holding every message")
            consumer.kill()
            consumer.start()
    except BaseException:
        consumer.kill()
        raise
    finally:
        with blocker.cursor() as cursor:
            cursor.execute("ROLLBACK")
        blocker.close()
    dead_letter_queue = f"dead_letter_{queue}"
    wait_until(lambda: _settled(client, queue, dead_letter_queue, pks),
               what="every message applied or dead-lettered")
    dump = replica_support.run_django(["cqrs_dead_letters", "dump", "--with-reasons"],
                                      "tests.testproject.settings", _consumer_env(
                                          cluster, exchange, queue))
    assert {json.loads(line)["reason"] for line in dump.splitlines()} == {
        "delivery_limit (dead-lettered by the broker)"}
    letters = client.take_all(dead_letter_queue)
    applied = replica.AuthorRef.objects.filter(pk__in=pks).count()
    assert applied + len(letters) == LIMITED
    assert letters, "the breach dead-lettered nothing: the limit was not hit"
    assert {props.headers["x-first-death-reason"] for props, _ in letters} == {
        "delivery_limit"}
    wait_until(lambda: client.channel.queue_declare(queue, passive=True).method.consumer_count,
               what="the last consumer started, with its signal handlers")
    assert consumer.terminate(30) == 0
    client.close()
    print(f"\n{LIMITED} events: {applied} applied, {len(letters)} dead-lettered by the "
          "delivery limit")


def _settled(client, queue, dead_letter_queue, pks) -> bool:
    applied = replica.AuthorRef.objects.filter(pk__in=pks).count()
    return client.count(queue) == 0 and applied + client.count(dead_letter_queue) == len(pks)
