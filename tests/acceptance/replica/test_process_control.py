"""Workers killed or stopped mid-batch lose nothing and change nothing twice."""

import random
from pathlib import Path

import pytest

from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

ROWS = 60
REVISIONS = 5


def _history():
    """Return shuffled, partly duplicated events of ROWS rows and the final state they imply."""
    rng = random.Random(4)
    bodies, final = [], {}
    for pk in range(1, ROWS + 1):
        for revision in range(REVISIONS):
            bodies.append(ev.save("author", pk, revision, name=f"{pk}@{revision}"))
        if pk % 4 == 0:
            bodies.append(ev.delete("author", pk, REVISIONS))
        else:
            final[pk] = (f"{pk}@{REVISIONS - 1}", REVISIONS - 1)
    bodies += rng.sample(bodies, len(bodies) // 3)
    rng.shuffle(bodies)
    return bodies, final


def _state():
    return {r.pk: (r.name, r.cqrs_revision) for r in models.AuthorRef.objects.all()}


def _marker(worker_env):
    return Path(worker_env["CQRS_TEST_CONTROL_DIR"]) / "sleepy.entered"


def test_sigkill_mid_batch__restarted_worker_ends_with_the_same_result(
        broker, names, start_worker, worker_env):
    bodies, final = _history()
    half = len(bodies) // 2
    for body in bodies[:half]:
        broker.publish(body, "author")
    broker.publish(ev.save("sleepy", 1, 0, name="60"), "sleepy")  # stalls its batch for 60s
    for body in bodies[half:]:
        broker.publish(body, "author")

    worker = start_worker("--batch-size", "25")
    wait_until(_marker(worker_env).exists, what="the stalled batch")
    worker.kill()
    assert not models.SleepyRef.objects.exists()  # its batch never committed
    assert broker.count(names.queue) > 0

    restarted = start_worker("--batch-size", "25")
    wait_until(lambda: _state() == final and models.SleepyRef.objects.exists(),
               what="the final state")
    wait_until(lambda: broker.count(names.queue) == 0, what="an empty queue")
    assert broker.count(names.dead_letter_queue) == 0
    assert restarted.terminate() == 0
    assert _state() == final


def test_sigterm_mid_batch__workers_finish_the_batch_ack_and_exit_0(
        broker, names, start_worker, worker_env):
    for pk in range(1, 40):
        broker.publish(ev.save("author", pk, 0, name="a"), "author")
    broker.publish(ev.save("sleepy", 1, 0, name="2"), "sleepy")
    for pk in range(40, 80):
        broker.publish(ev.save("author", pk, 0, name="b"), "author")

    workers = start_worker("-w", "2", "--batch-size", "10")
    wait_until(_marker(worker_env).exists, what="the stalled batch")
    assert workers.terminate() == 0
    assert models.SleepyRef.objects.exists()  # the batch in hand was finished and committed
    applied = models.AuthorRef.objects.count()
    waiting = broker.count(names.queue)
    assert applied + waiting == 79  # every author is either applied or still queued

    drained = start_worker()
    wait_until(lambda: models.AuthorRef.objects.count() == 79, what="the rest")
    assert drained.terminate() == 0
