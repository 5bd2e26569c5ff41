"""The consumer on several broker addresses, and what it says about its queue at start.

A real consumer runs in a thread of the test against RabbitMQ and PostgreSQL. The first
address of a list is a local port nothing listens on, as a node that died.
"""

import logging
import threading

import pika
import pytest
from pika import exceptions as pika_exceptions

from cqrs_outbox.replica import consumer, topology
from tests.acceptance.monitoring import scrape
from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

GUEST = "amqp://guest:guest@127.0.0.1"


@pytest.fixture
def queue_names():
    queue = support.unique("cluster")
    return topology.Names(support.unique("cluster_ex"), queue, f"dead_letter_{queue}",
                          f"{queue}{topology.DELAY_SUFFIX}")


@pytest.fixture
def client(queue_names):
    box = support.Broker(queue_names.exchange)
    box.channel.exchange_declare(queue_names.exchange, "topic", durable=True)
    yield box
    box.delete(queue_names.queue, queue_names.dead_letter_queue, queue_names.delay_queue)
    box.close()


@pytest.fixture
def start(settings, queue_names, caplog):
    """Return a function starting a consumer thread on `url`; it is stopped after."""
    caplog.set_level(logging.INFO, logger="cqrs_outbox")
    workers = []

    def run(url):
        settings.CQRS = {**settings.CQRS, "url": url, "exchange": queue_names.exchange,
                         "queue": queue_names.queue}
        worker = consumer.Consumer()
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        workers.append((worker, thread))
        return worker

    yield run
    for worker, thread in workers:
        worker.stop()
        thread.join(30)


def _lines(caplog, phrase):
    return [(r.levelname, r.getMessage()) for r in caplog.records if phrase in r.getMessage()]


def _declare_as_django_cqrs(queue):
    """Declare `queue` as django-cqrs's consumer does: durable, not exclusive, and without
    any argument (dj_cqrs.transport.rabbit_mq, `_get_consumer_rmq_objects`)."""
    connection = pika.BlockingConnection(pika.URLParameters(support.BROKER_URL))
    try:
        connection.channel().queue_declare(queue, durable=True, exclusive=False)
    finally:
        connection.close()


def test_consumer__first_node_down_consumes_through_the_second(start, client, queue_names,
                                                                caplog):
    dead = scrape.free_port()
    start(f"{GUEST}:{dead},127.0.0.1:5672/%2F")
    wait_until(lambda: _lines(caplog, "Consuming"), what="the consumer to start")
    client.publish(ev.save("author", 1, 0, name="through node two"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(name="through node two").exists(),
               what="the event applied")
    assert _lines(caplog, f"Queue {queue_names.queue} on RabbitMQ") == [(
        "INFO", f"Queue {queue_names.queue} on RabbitMQ 3.10.8: classic queue, delivery "
                "limit none (a classic queue has none)")]
    assert not _lines(caplog, "arguments of its own")
    _declare_as_django_cqrs(queue_names.queue)  # our declaration left it as django-cqrs's


def test_consumer__quorum_queue_declared_beforehand_with_a_limit_is_used_and_warned_of(
        start, client, queue_names, caplog):
    client.channel.queue_declare(queue_names.queue, durable=True, arguments={
        "x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue_names.dead_letter_queue})
    start(support.BROKER_URL)
    wait_until(lambda: _lines(caplog, "Consuming"), what="the consumer bound and consuming")
    client.publish(ev.save("author", 2, 0, name="on the quorum queue"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(name="on the quorum queue").exists(),
               what="the event applied")
    [(level, kept)] = _lines(caplog, "arguments of its own")
    assert level == "WARNING" and "inequivalent arg" in kept
    assert _lines(caplog, f"Queue {queue_names.queue} on RabbitMQ") == [(
        "INFO", f"Queue {queue_names.queue} on RabbitMQ 3.10.8: quorum queue, delivery limit "
                "5 (the queue's argument)")]
    [(level, warning)] = _lines(caplog, "deliveries, fewer than twice the prefetch")
    assert level == "WARNING"
    assert "takes a message off after 5 deliveries, fewer than twice the prefetch (500)" \
        in warning and queue_names.dead_letter_queue in warning
    with pytest.raises(pika_exceptions.ChannelClosedByBroker, match="PRECONDITION_FAILED"):
        _declare_as_django_cqrs(queue_names.queue)  # why a policy, not arguments
