"""A replica row frozen by a forged revision is repaired with `cqrs_sync --repair`.

Under CQRS['replica']['signatures'] = 'off' anyone who can publish can send a SAVE with
a huge revision; every real change after it looks older and is ignored, and so is a
plain `cqrs_sync`. The repair SYNC travels like any event (outbox, relay, RabbitMQ,
consumer) and the replica takes it whatever its row's revision.
"""

import datetime
import json

import pika
import pytest

from cqrs_outbox.models import OutboxEvent
from tests.acceptance.ops.conftest import BROKER_URL
from tests.support.waiting import wait_until
from tests.testproject.chaos import models

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

FORGED = 2**40


def _copy(pk):
    row = models.ItemCopy.objects.filter(pk=pk).first()
    return row and (row.name, row.cqrs_revision)


def _publish_forged(exchange, pk):
    # Stamped far ahead too, so the master's later changes are older by either order.
    future = datetime.datetime(2999, 1, 1, tzinfo=datetime.timezone.utc)
    body = {
        "signal_type": "SAVE", "cqrs_id": "chaos_item", "instance_pk": pk,
        "instance_data": {"id": pk, "name": "forged", "counter": 0, "note": "",
                          "cqrs_revision": FORGED, "cqrs_updated": str(future)},
        "previous_data": None, "correlation_id": None, "retries": 0, "expires": None,
        "meta": None,
    }
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, "chaos_item", json.dumps(body).encode(),
                              pika.BasicProperties(content_type="text/plain", delivery_mode=2),
                              mandatory=True)
    finally:
        connection.close()


def test_cqrs_sync_repair__brings_back_a_row_frozen_at_a_forged_revision(services, broker):
    item = models.Item.objects.create(name="real")
    with services.consumer() as consumer_log:
        wait_until(lambda: broker.consumers(services.queue), "the consumer to start")
        services.relay_once()
        wait_until(lambda: _copy(item.pk) == ("real", 0), "the first event")

        _publish_forged(services.exchange, item.pk)
        wait_until(lambda: _copy(item.pk) == ("forged", FORGED), "the forged event")

        item.name = "real b"
        item.save()
        plain = services.django("cqrs_sync", "--cqrs-id", "chaos_item", "-f",
                                json.dumps({"id": item.pk}))
        assert plain.returncode == 0, plain.stderr
        services.relay_once()
        wait_until(lambda: "CQRS revision downgrade on sync" in consumer_log(),
                   "the plain SYNC to be ignored")
        assert _copy(item.pk) == ("forged", FORGED)

        repair = services.django("cqrs_sync", "--cqrs-id", "chaos_item", "-f",
                                 json.dumps({"id": item.pk}), "--repair")
        assert repair.returncode == 0, repair.stderr
        assert "1 instance(s) synced." in repair.stdout
        services.relay_once()
        wait_until(lambda: _copy(item.pk) == ("real b", 1), "the repair", timeout=60)
        assert f"Repairing chaos_item:{item.pk} from the master: revision {FORGED} -> " \
               "revision 1" in consumer_log()

        item.name = "real c"
        item.save()
        services.relay_once()
        wait_until(lambda: _copy(item.pk) == ("real c", 2), "the next change")
    assert OutboxEvent.objects.filter(signal_type="SYNC").count() == 2
