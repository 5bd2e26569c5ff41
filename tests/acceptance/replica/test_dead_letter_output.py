"""`cqrs_dead_letters retry` prints the count and the ids; bodies only with --verbose.
A replica pointed at an exchange of another type is told which setting to change."""

import json

import pytest

from tests.acceptance.replica import support
from tests.integration.replica import events as ev

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SETTINGS = "tests.testproject.settings"
SECRET_NAME = "Jane Private"


def _park(broker, names, count):
    """Put `count` dead letters in the queue, as a consumer leaves them."""
    for pk in range(1, count + 1):
        broker.publish(ev.save("author", pk, 0, name=SECRET_NAME),
                       f"cqrs.{names.dead_letter_queue}.author", message_id=f"m{pk}")


def test_retry__prints_count_and_ids_not_bodies(broker, names, worker_env):
    _park(broker, names, 3)
    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env)
    assert out.splitlines() == [
        "Total dead letters: 3",
        "Retrying: 1/3 message m1 author:1",
        "Retrying: 2/3 message m2 author:2",
        "Retrying: 3/3 message m3 author:3",
        "Retried 3 dead letters.",
    ]
    assert SECRET_NAME not in out
    assert broker.count(names.queue) == 3


def test_retry_verbose__also_prints_each_body(broker, names, worker_env):
    _park(broker, names, 1)
    out = support.run_django(["cqrs_dead_letters", "retry", "--verbose"], SETTINGS, worker_env)
    lines = out.splitlines()
    assert lines[1] == "Retrying: 1/1 message m1 author:1"
    assert json.loads(lines[2])["instance_data"]["name"] == SECRET_NAME
    assert json.loads(lines[2])["retries"] == 0


def test_consumer__exchange_of_another_type_names_the_exchange_and_exits_1(
        start_worker, worker_env):
    worker = start_worker(env={"CQRS_TEST_EXCHANGE": "amq.direct"})
    assert worker.wait(support.WAIT) == 1
    [line] = [line for line in worker.log.strip().splitlines()
              if not line.startswith(support.CONSUMER_STARTUP)]
    assert "CQRS['exchange'] names exchange 'amq.direct', which exists as a direct exchange" \
        in line
    assert "durable topic exchange" in line and "Traceback" not in line
