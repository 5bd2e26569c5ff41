"""Events published before any queue is bound come back returned (NO_ROUTE); an operator
sees them everywhere they look, binds the queue, replays them, and the replica has them.

The whole story on the real PostgreSQL and RabbitMQ: the relay runs with no queue bound
to `author`; `--status` of both front ends, the relay's start-up line, the admin (filter
and summary) and the metrics show the returned events per routing key; the consumer
starts (declaring and binding its queue); the admin's replay sends them again and the
consumer applies them.
"""

import pytest
from django.db import connections
from django.urls import reverse
from prometheus_client import CollectorRegistry

from cqrs_outbox import store
from cqrs_outbox.models import OutboxEvent
from relay import metrics
from tests.acceptance.ops.conftest import PG
from tests.support.waiting import wait_until
from tests.testproject.master import models
from tests.testproject.replica.models import AuthorRef

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

LIST_URL = reverse("admin:cqrs_outbox_outboxevent_changelist")


def _status(services):
    ours = services.django("cqrs_relay", "--status")
    assert ours.returncode == 0, ours.stderr
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{services.test_db}"
    standalone = services.python("-m", "relay", "--status", "--database-url", url)
    assert standalone.returncode == 0, standalone.stderr
    return ours.stdout, standalone.stdout


def _returned_gauge():
    registry = CollectorRegistry()
    observer = metrics.RelayMetrics("default", registry)
    observer.sample(store.wrap(connections["default"]))
    return {
        sample.labels["routing_key"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "cqrs_outbox_returned_events"
    }


def test_returned_events__shown_everywhere_then_replayed_once_a_queue_is_bound(
    services, broker, admin_client
):
    ann = models.Author.objects.create(name="Ann")
    bob = models.Author.objects.create(name="Bob")
    first = services.django("cqrs_relay", "--once", "--no-listen")
    assert first.returncode == 0, first.stderr
    assert "returned 2" in first.stdout
    originals = list(OutboxEvent.objects.order_by("id"))
    assert all(e.returned_at is not None and e.status == "published" for e in originals)
    assert all(e.last_error == "returned by the broker: 312 NO_ROUTE" for e in originals)

    # Visible: --status of both front ends, the next start-up line, the metrics, the admin.
    for text in _status(services):
        assert "returned (unroutable): 2" in text
        assert "routing key author: 2 returned, no queue was bound" in text
    again = services.django("cqrs_relay", "--once", "--no-listen")
    assert again.returncode == 0, again.stderr
    assert (
        "WARNING: events returned unroutable, no queue bound to their routing key: author (2); "
        "registered master models without a bound queue: author."
    ) in again.stdout
    assert _returned_gauge() == {"author": 2.0}
    page = admin_client.get(LIST_URL)
    summary = page.context["cqrs_summary"]
    assert (summary["returned"], summary["returned_keys"]) == (2, "author")
    assert 'href="?returned=unroutable">2</a>' in page.content.decode()
    filtered = admin_client.get(LIST_URL, {"returned": "unroutable"})
    listed = sorted(obj.pk for obj in filtered.context["cl"].result_list)
    assert listed == [e.pk for e in originals]

    with services.consumer() as consumer_log:
        wait_until(lambda: broker.consumers(services.queue), "the consumer to bind its queue")
        reply = admin_client.post(
            LIST_URL,
            {"action": "replay_events", "_selected_action": listed, "index": 0},
            follow=True,
        )
        assert "2 event(s) queued to be published again" in reply.content.decode()
        services.relay_once()
        applied = {(ann.pk, "Ann"), (bob.pk, "Bob")}
        try:
            wait_until(lambda: set(AuthorRef.objects.values_list("id", "name")) == applied,
                       "the replica to apply the replayed events")
        except AssertionError as exc:
            raise AssertionError(consumer_log()) from exc

    for text in _status(services):
        assert "returned (unroutable): 0" in text
        assert "routing key" not in text
    assert _returned_gauge() == {}
    assert admin_client.get(LIST_URL).context["cqrs_summary"]["returned"] == 0
    copies = OutboxEvent.objects.filter(pk__gt=originals[-1].pk)
    assert [(c.status, c.returned_at, c.last_error) for c in copies] == [
        ("published", None, "")
    ] * 2
