"""Several broker addresses with the first node down: every relay connects to the next.

The first address is a local port nothing listens on, as a node that died; the second is
the machine's RabbitMQ.
"""

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tests.acceptance.monitoring import scrape
from tests.integration.relay import support

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.broker,
]

GUEST = "amqp://guest:guest@127.0.0.1"


@pytest.fixture
def dead_port():
    """A local port nothing listens on."""
    return scrape.free_port()


def test_cqrs_relay__first_node_down_publishes_through_the_second(collector, dead_port):
    ids = support.write_events(("author", pk, 0) for pk in range(20))
    urls = [f"{GUEST}:{dead_port}/%2F", support.BROKER_URL]
    out = io.StringIO()
    with override_settings(CQRS={**settings.CQRS, "url": urls,
                                 "exchange": collector.exchange}):
        call_command("cqrs_relay", "--once", stdout=out)
    collector.collect(ids)
    assert support.outbox_counts() == {"published": 20}
    first = out.getvalue().splitlines()[0]
    assert f"broker amqp://guest:***@127.0.0.1:{dead_port}/%2F, amqp://guest:***@" in first


@pytest.mark.parametrize("form", ["repeated", "host_list"])
def test_standalone_relay__first_node_down_publishes_through_the_second(
        collector, relays, dead_port, form):
    ids = support.write_events(("author", pk, 0) for pk in range(20))
    if form == "repeated":
        relay = relays("two-urls", "--broker-url", support.BROKER_URL, "--poll-interval", "0.2",
                       broker=f"{GUEST}:{dead_port}/%2F")
    else:
        relay = relays("host-list", "--poll-interval", "0.2",
                       broker=f"{GUEST}:{dead_port},127.0.0.1:5672/%2F?heartbeat=20")
    collector.collect(ids)
    assert relay.terminate() == 0
    log = relay.log()
    assert "connected to broker node amqp://guest:***@127.0.0.1:5672/%2F" in log
    assert "guest:guest" not in log
