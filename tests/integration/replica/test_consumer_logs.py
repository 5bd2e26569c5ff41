"""The consumer logs lost, stale and duplicate revisions as django-cqrs does, capped per batch.

A real consumer runs in a thread of the test against RabbitMQ and PostgreSQL, so the
test sees each record's level, not only its text.
"""

import logging
import re
import threading

import pytest

from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import batchlog, consumer, topology
from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

DUPLICATES = 11  # more than a batch writes lines for


@pytest.fixture
def running(settings):
    """Start a consumer thread on a queue of the test's own; yield the test's broker client."""
    queue = support.unique("logs")
    settings.CQRS = {**settings.CQRS, "exchange": support.unique("logs_ex"), "queue": queue}
    names = topology.Names(settings.CQRS["exchange"], queue, f"dead_letter_{queue}",
                           f"{queue}{topology.DELAY_SUFFIX}")
    client = support.Broker(names.exchange)
    topology.declare(client.channel, names, sorted(ReplicaRegistry.models))
    worker = consumer.Consumer(batch_size=500)
    thread = threading.Thread(target=worker.run, daemon=True)
    yield client, thread
    worker.stop()
    thread.join(30)
    client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
    client.close()


def _records(caplog, phrase):
    return [r for r in caplog.records if phrase in r.getMessage()]


def test_consumer__logs_revisions_as_django_cqrs_and_one_summary_per_batch(running, caplog):
    client, thread = running
    events = [ev.save("author", 1, 0, name="a"), ev.save("author", 1, 3, name="b"),
              ev.save("author", 1, 2, name="old"), ev.sync("author", 1, 1, name="older")]
    events += [ev.save("author", 2, 0, name="x")] * (DUPLICATES + 1)
    for body in events:
        client.publish(body, "author")
    caplog.set_level(logging.DEBUG, logger="cqrs_outbox")
    thread.start()
    wait_until(lambda: models.AuthorRef.objects.filter(pk=2).exists()
               and sum(_summed(caplog).values()) >= len(events) - 2, what="every event")

    assert models.AuthorRef.objects.get(pk=1).name == "b"
    [lost] = _records(caplog, "Lost or filtered out")
    assert (lost.levelname, lost.getMessage()) == (
        "WARNING", "Lost or filtered out 2 CQRS packages: pk = 1, cqrs_revision = 3 (author)")
    [stale] = _records(caplog, "Wrong CQRS sync order")
    assert (stale.levelname, stale.getMessage()) == (
        "ERROR", "Wrong CQRS sync order: pk = 1, cqrs_revision = new 2 / existing 3 (author).")
    [downgrade] = _records(caplog, "CQRS revision downgrade on sync")
    assert downgrade.levelname == "WARNING"
    assert "pk = 1, cqrs_revision = new 1 / existing 3 (author)" in downgrade.getMessage()
    duplicates = _records(caplog, "Received duplicate CQRS data")
    assert {r.levelname for r in duplicates} == {"ERROR"}
    assert duplicates[0].getMessage() == (
        "Received duplicate CQRS data: pk = 2, cqrs_revision = 0 (author).")
    races = _records(caplog, "CQRS potential creation race condition")
    assert {r.levelname for r in races} == {"WARNING"}

    summaries = _records(caplog, "acknowledged in")
    assert _summed(caplog)["duplicates"] == DUPLICATES
    # A burst writes a few lines per batch and counts the rest.
    assert len(duplicates) <= batchlog.LINES_PER_KIND * len(summaries) < DUPLICATES
    assert any("similar lines not shown" in r.getMessage() for r in summaries)
    assert max(r.levelno for r in summaries) == logging.ERROR


def _summed(caplog):
    """Add up the counts of every batch summary line."""
    totals = {}
    for record in _records(caplog, "acknowledged in"):
        for count, kind in re.findall(r"(\d+) (applied|duplicates|older than the row)",
                                      record.getMessage()):
            totals[kind] = totals.get(kind, 0) + int(count)
    return totals


def test_consumer__status_lines_count_applied_skipped_and_dead_lettered(settings, monkeypatch,
                                                                         caplog):
    monkeypatch.setattr(consumer, "PROGRESS_INTERVAL", 0.0)  # a progress line per batch
    queue = support.unique("status")
    settings.CQRS = {**settings.CQRS, "exchange": support.unique("status_ex"), "queue": queue}
    names = topology.Names(settings.CQRS["exchange"], queue, f"dead_letter_{queue}",
                           f"{queue}{topology.DELAY_SUFFIX}")
    client = support.Broker(names.exchange)
    try:
        topology.declare(client.channel, names, sorted(ReplicaRegistry.models))
        for body in (ev.save("author", 1, 0, name="a"), ev.save("author", 1, 0, name="a"),
                     b"not json"):
            client.publish(body, "author")
        caplog.set_level(logging.INFO, logger="cqrs_outbox.replica.status")
        worker = consumer.Consumer(batch_size=500)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        progress = "Worker .* on queue .*, last \\d+s: (\\d+) applied, (\\d+) skipped, " \
                   "(\\d+) dead-lettered, (\\d+) retried, lag (\\S+)"

        def counted():
            found = [re.fullmatch(progress, r.getMessage()) for r in caplog.records]
            return [tuple(int(n) for n in m.groups()[:4]) for m in found if m]

        wait_until(lambda: [sum(c) for c in zip(*counted(), strict=True)] == [1, 1, 1, 0],
                   what="progress lines counting the three messages")
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
        client.close()
    [stop] = [r.getMessage() for r in caplog.records if " stopped on queue " in r.getMessage()]
    assert re.fullmatch(
        f"Worker \\d+ stopped on queue {queue}, its last batch acknowledged; since its start: "
        "1 applied, 1 skipped, 1 dead-lettered, 0 retried, lag \\d+\\.\\ds", stop
    ), stop
