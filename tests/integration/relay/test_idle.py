"""An idle relay on PostgreSQL waits on its LISTEN connection between turns."""

import pytest

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
    """With nothing to publish, a relay that listens for NOTIFY waits up to its poll
    interval between turns (here 0.5 s, so a few turns in two seconds) instead of
    turning again at once, which would poll the database without pause."""
    turns = Turns()
    relay = drain.build_relay(observer=turns, poll_interval=0.5)
    assert relay.config.listen
    stats = relay.run(seconds=2.0)
    assert stats.published == 0
    assert 1 <= turns.count <= 8
