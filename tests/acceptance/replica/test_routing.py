"""Routing as django-cqrs does it: direct SYNCs, and bindings limited by --cqrs-id."""

import pika
import pytest

from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


def test_only_direct_syncs__broadcast_sync_ignored_direct_sync_applied(broker, names,
                                                                       start_worker):
    worker = start_worker()
    broker.publish(ev.save("direct_only", 1, 0, name="saved"), "direct_only")
    broker.publish(ev.sync("direct_only", 1, 0, name="broadcast"), "direct_only")
    broker.publish(ev.sync("direct_only", 2, 0, name="broadcast"), "direct_only")
    broker.publish(ev.save("author", 1, 0, name="marker"), "author")
    wait_until(lambda: models.AuthorRef.objects.exists(), what="the marker")
    assert list(models.DirectOnlyRef.objects.values_list("id", "name")) == [(1, "saved")]

    broker.publish(ev.sync("direct_only", 1, 0, name="direct"), f"cqrs.{names.queue}.direct_only")
    wait_until(lambda: models.DirectOnlyRef.objects.get(pk=1).name == "direct",
               what="the direct SYNC")
    assert worker.terminate() == 0


def test_cqrs_id_option__binds_only_the_chosen_models(names, start_worker):
    worker = start_worker("--cqrs-id", "author", "--cqrs-id", "publisher")
    client = support.Broker(names.exchange)
    try:
        publisher = ev.save("publisher", 1, 0, title="p", books=1)
        wait_until(lambda: _routed(client, publisher, "publisher"), what="the last binding")
        client.publish(ev.save("author", 1, 0, name="a"), "author")
        with pytest.raises(pika.exceptions.UnroutableError):
            client.publish(ev.save("tracked", 1, 0, name="t", status="s"), "tracked")
        wait_until(lambda: models.AuthorRef.objects.exists(), what="the author")
        assert models.PublisherRef.objects.exists()
        assert worker.terminate() == 0
    finally:
        client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
        client.close()


def _routed(client, body, routing_key):
    """Publish if the exchange routes `routing_key` somewhere; say whether it did."""
    try:
        client.publish(body, routing_key)
        return True
    except (pika.exceptions.UnroutableError, pika.exceptions.ChannelClosedByBroker):
        if client.channel.is_closed:  # no exchange yet: the broker closed the channel
            client.channel = client.connection.channel()
            client.channel.confirm_delivery()
        return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_conflicting_delay_queue__workers_stop_with_the_reason(names, start_worker, workers):
    client = support.Broker(names.exchange)
    client.channel.queue_declare(names.delay_queue, durable=True)  # without our arguments
    try:
        worker = start_worker("-w", workers)
        assert worker.wait() != 0
        assert "the broker refused to declare the replica queues" in worker.log
        assert "PRECONDITION_FAILED" in worker.log
    finally:
        client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
        client.close()
