"""A replica database that refuses connections for 20 seconds costs a few log lines, not
thousands: the first failure is written in full, repeats are counted."""

import os
import time

import pytest

from tests.integration.replica import events as ev
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

REFUSAL = 20.0  # seconds the database refuses connections
MAX_LINES = 50  # log lines the worker may write meanwhile


def _publish(broker, first, last):
    for pk in range(first, last):
        broker.publish(ev.save("author", pk, 0, name=f"a{pk}"), "author")


def test_database_refusal__20_seconds_log_fewer_than_50_lines(broker, names, start_worker):
    with TcpProxy(os.environ.get("PGHOST", "127.0.0.1"),
                  int(os.environ.get("PGPORT", "5432"))) as pg:
        worker = start_worker(env={"PGPORT": str(pg.port)})
        _publish(broker, 1, 11)
        wait_until(lambda: models.AuthorRef.objects.count() == 10, what="the first events")

        before = len(worker.log.splitlines())
        pg.close()
        _publish(broker, 11, 211)
        time.sleep(REFUSAL)
        during = worker.log.splitlines()[before:]
        pg.open()
        wait_until(lambda: models.AuthorRef.objects.count() == 210, what="events afterwards")

        assert worker.alive
        assert 0 < len(during) < MAX_LINES, "\n".join(during)
        assert any("unreachable" in line or "reconnecting" in line for line in during), during
        assert broker.count(names.dead_letter_queue) == 0  # nothing was lost to the outage
        assert worker.terminate() == 0
