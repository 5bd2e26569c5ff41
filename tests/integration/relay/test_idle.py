"""An idle relay on PostgreSQL waits on its LISTEN connection between turns, and hands
Django's connection back without it."""

import pytest
from django.db import connection

from cqrs_outbox import drain
from relay import metrics

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres,
              pytest.mark.broker]


class Turns(metrics.Observer):
    def __init__(self):
        self.count = 0

    def turned(self, db, partitions_held):
        self.count += 1


def test_idle_relay__sleeps_on_its_listener_between_turns(exchange):
    """With nothing to publish, a relay that listens for NOTIFY waits out its whole poll
    interval (here ten minutes, cut to the two seconds it runs) after one turn. Without
    the listener it would poll after 0.05 s, 0.1 s, 0.2 s...; without any wait it would
    poll the database without pause."""
    turns = Turns()
    relay = drain.build_relay(observer=turns, poll_interval=600)
    assert relay.config.listen
    assert relay.run(seconds=2.0).published == 0
    assert 1 <= turns.count <= 2


def test_stopped_relay__leaves_no_listen_on_djangos_connection(exchange):
    """The relay listens on Django's own connection; once it stops, the connection goes
    back to Django's other work subscribed to nothing."""
    relay = drain.build_relay(poll_interval=0.2)
    relay.run(seconds=0.5)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_listening_channels()")
        assert cursor.fetchall() == []
