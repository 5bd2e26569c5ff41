"""A worker rides out broker and database outages and applies everything afterwards.

The worker reaches RabbitMQ and PostgreSQL through loopback proxies the test controls;
the shared services themselves are never touched.
"""

import os
import time

import pytest

from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

OUTAGE = 3.0  # seconds a service stays away


def _publish(broker, first, last):
    for pk in range(first, last):
        broker.publish(ev.save("author", pk, 0, name=f"a{pk}"), "author")


def _applied(count):
    return lambda: models.AuthorRef.objects.count() == count


def test_outages__worker_reconnects_to_broker_and_database_and_loses_nothing(
        broker, names, start_worker):
    with TcpProxy("127.0.0.1", 5672) as mq, \
            TcpProxy(os.environ.get("PGHOST", "127.0.0.1"),
                     int(os.environ.get("PGPORT", "5432"))) as pg:
        worker = start_worker(env={"CQRS_BROKER_URL": mq.url(support.BROKER_URL),
                                   "PGPORT": str(pg.port)})
        _publish(broker, 1, 21)
        wait_until(_applied(20), what="the first events")

        mq.cut()  # the broker connection drops
        _publish(broker, 21, 41)
        wait_until(_applied(40), what="events after the broker came back")

        mq.close()  # the broker is away for a while
        time.sleep(OUTAGE)
        _publish(broker, 41, 61)
        mq.open()
        wait_until(_applied(60), what="events after a broker outage")

        pg.close()  # the database is away for a while
        _publish(broker, 61, 81)
        time.sleep(OUTAGE)
        assert models.AuthorRef.objects.count() == 60
        pg.open()
        wait_until(_applied(80), what="events after a database outage")

        assert worker.alive
        assert broker.count(names.dead_letter_queue) == 0
        assert "reconnecting in" in worker.log
        assert worker.terminate() == 0
