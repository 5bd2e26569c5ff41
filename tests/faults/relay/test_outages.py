"""Broker and database connections cut under a running relay while the master writes."""

import time

import pytest

from cqrs_outbox.models import OutboxEvent
from tests.integration.relay import support
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.broker,
    pytest.mark.slow,
]

OUTAGE = 2.5  # seconds the proxy stays closed
FAST = ("--poll-interval", "0.2", "--lease-ttl", "3")


def _cut_while_writing(collector, proxy):
    """Let events flow, close the proxy for a while, reopen it; return the save count."""
    with support.Writer() as writer:
        wait_until(lambda: collector.pump() >= 10, what="first events")
        proxy.close()
        saves = writer.saves
        time.sleep(OUTAGE)
        assert writer.saves > saves  # the master keeps writing through the outage
        proxy.open()
        time.sleep(1.0)
    return writer.saves


def _every_event_arrived(collector, saves):
    ids = list(OutboxEvent.objects.values_list("id", flat=True))
    assert len(ids) == saves
    collector.collect(ids)
    wait_until(
        lambda: set(support.outbox_counts()) == {"published"}, what="every row published"
    )


def _outage_logged_once(log, what):
    assert log.count(f"{what} unavailable") == 1, log
    assert log.count(f"{what} available again") == 1, log


def test_broker_cut__every_event_written_meanwhile_arrives(collector, relays):
    with TcpProxy("127.0.0.1", 5672) as proxy:
        relay = relays("broker-cut", *FAST, broker=proxy.url(support.BROKER_URL))
        saves = _cut_while_writing(collector, proxy)
        _every_event_arrived(collector, saves)
        assert relay.terminate() == 0
    _outage_logged_once(relay.log(), "broker")


def test_database_cut__every_event_written_meanwhile_arrives(collector, relays):
    from django.db import connection

    settings = connection.settings_dict
    with TcpProxy(settings["HOST"], int(settings["PORT"])) as proxy:
        url = support.database_url(host=proxy.host, port=proxy.port)
        relay = relays("database-cut", *FAST, database=url)
        saves = _cut_while_writing(collector, proxy)
        _every_event_arrived(collector, saves)
        assert relay.terminate() == 0
    _outage_logged_once(relay.log(), "database")
