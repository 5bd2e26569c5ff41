"""cqrs_sync with and without -q, through the outbox, the relay and RabbitMQ."""

import json

import pytest

from cqrs_outbox.models import OutboxEvent
from tests.acceptance.ops.conftest import unique
from tests.testproject.master import models

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]


def _synced(bodies):
    return sorted((b["signal_type"], b["instance_pk"]) for b in bodies)


def test_cqrs_sync__q_reaches_only_that_queue_and_no_q_reaches_both(services, broker):
    authors = [models.Author.objects.create(name=f"author {i}") for i in range(3)]
    OutboxEvent.objects.all().delete()  # only the resends go out
    replica_a = broker.replica_queue(unique("replica_a"), ["author"])
    replica_b = broker.replica_queue(unique("replica_b"), ["author"])
    chosen = [authors[0].pk, authors[1].pk]
    expected = [("SYNC", authors[0].pk), ("SYNC", authors[1].pk)]

    aimed = services.django(
        "cqrs_sync", "--cqrs-id", "author", "-f", json.dumps({"id__in": chosen}), "-q", replica_a
    )
    assert aimed.returncode == 0, aimed.stderr
    services.relay_once()
    assert _synced(broker.take_all(replica_a)) == expected
    assert broker.take_all(replica_b) == []

    everyone = services.django(
        "cqrs_sync", "--cqrs-id", "author", "-f", json.dumps({"id__in": chosen})
    )
    assert everyone.returncode == 0, everyone.stderr
    services.relay_once()
    assert _synced(broker.take_all(replica_a)) == expected
    assert _synced(broker.take_all(replica_b)) == expected


def test_cqrs_sync__bad_filter_exits_1_and_nothing_is_published(services, broker):
    models.Author.objects.create(name="Ann")
    OutboxEvent.objects.all().delete()
    replica_a = broker.replica_queue(unique("replica_a"), ["author"])
    result = services.django(
        "cqrs_sync", "--cqrs-id", "author", "-f", '{"nope": 1}', "-q", replica_a
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "CommandError: Bad filter kwargs! Cannot resolve keyword 'nope'"
    )
    assert OutboxEvent.objects.count() == 0
    services.relay_once()
    assert broker.take_all(replica_a) == []
