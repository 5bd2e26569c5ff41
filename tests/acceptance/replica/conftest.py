"""Fixtures of the replica acceptance tests: a queue of the test's own and workers on it."""

import pytest
from django.db import connections

from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import topology
from tests.acceptance.replica import support

SETTINGS = "tests.testproject.settings"


@pytest.fixture
def names():
    """Broker names of this test alone."""
    queue = support.unique("replica")
    return topology.Names(
        exchange=support.unique("cqrs_ex"), queue=queue, dead_letter_queue=f"dead_letter_{queue}",
        delay_queue=f"{queue}{topology.DELAY_SUFFIX}",
    )


@pytest.fixture
def broker(names):
    """A test-side connection; the replica's queues are declared before anything is sent."""
    client = support.Broker(names.exchange)
    topology.declare(client.channel, names, sorted(ReplicaRegistry.models))
    yield client
    client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
    client.close()


@pytest.fixture
def worker_env(names, tmp_path, transactional_db):
    """Environment of a worker process: the test database, queue and control directory."""
    return {
        "CQRS_TEST_DB_NAME": connections["default"].settings_dict["NAME"],
        "CQRS_TEST_EXCHANGE": names.exchange,
        "CQRS_TEST_QUEUE": names.queue,
        "CQRS_TEST_CONTROL_DIR": str(tmp_path / "control"),
    }


@pytest.fixture
def start_worker(worker_env, tmp_path, names):
    """Return a function starting `cqrs_consume` (extra arguments allowed) as a process."""
    started = []

    def start(*args, env=None):
        log = tmp_path / f"worker{len(started)}.log"
        process = support.django(["cqrs_consume", *args], SETTINGS, {**worker_env, **(env or {})},
                                 log)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
    # The workers declared the replica's queues; a test without the `broker` fixture
    # deletes them here (deleting twice is harmless).
    client = support.Broker(names.exchange)
    client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
    client.close()
