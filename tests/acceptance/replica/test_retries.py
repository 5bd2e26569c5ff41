"""Failing events are retried through the delay queue, then dead-lettered, then retried by hand.

The test settings allow CQRS_MAX_RETRIES = 3 retries, CQRS_RETRY_DELAY = 1 second apart.
"""

import json
from pathlib import Path

import pytest

from tests.acceptance.replica import support
from tests.acceptance.replica.conftest import SETTINGS
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


def _attempts(worker_env, pk):
    path = Path(worker_env["CQRS_TEST_CONTROL_DIR"]) / f"flaky-{pk}.attempts"
    return len(path.read_text()) if path.exists() else 0


def test_retry__fails_twice_then_applies_after_two_delayed_retries(broker, start_worker,
                                                                   worker_env):
    worker = start_worker()
    broker.publish(ev.save("flaky", 1, 0, name="fail:2"), "flaky")
    broker.publish(ev.save("author", 1, 0, name="unaffected"), "author")

    row = wait_until(lambda: models.FlakyRef.objects.filter(pk=1).first(), what="flaky row")
    assert row.attempts == 3
    assert _attempts(worker_env, 1) == 3
    assert models.AuthorRef.objects.filter(pk=1).exists()
    assert "retry 1 in 1.0s" in worker.log and "retry 2 in 1.0s" in worker.log
    assert "retry 3" not in worker.log
    assert worker.terminate() == 0


def test_retry__always_failing_ends_in_dead_letters_and_comes_back_when_fixed(
        broker, names, start_worker, worker_env):
    worker = start_worker()
    broker.publish(ev.save("flaky", 2, 0, name="fail:always"), "flaky")

    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="a dead letter")
    assert _attempts(worker_env, 2) == 4  # the first attempt and CQRS_MAX_RETRIES retries
    dumped = support.run_django(["cqrs_dead_letters", "dump", "--with-reasons"], SETTINGS,
                                worker_env)
    [line] = dumped.splitlines()
    letter = json.loads(line)
    assert letter["reason"].startswith("failed after 3 retries: RuntimeError: flaky 2 always")
    assert json.loads(letter["body"])["retries"] == 3
    assert broker.count(names.dead_letter_queue) == 1  # dump leaves it there
    assert not models.FlakyRef.objects.exists()

    (Path(worker_env["CQRS_TEST_CONTROL_DIR"]) / "fixed").touch()
    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env)
    assert "Total dead letters: 1" in out and "Retrying: 1/1" in out

    row = wait_until(lambda: models.FlakyRef.objects.filter(pk=2).first(), what="fixed row")
    assert row.attempts == 5
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0


def test_dead_letters_purge__empties_the_queue(broker, names, worker_env):
    broker.publish(b"junk", f"cqrs.{names.dead_letter_queue}.author")
    broker.publish(b"junk", f"cqrs.{names.dead_letter_queue}.author")
    out = support.run_django(["cqrs_dead_letters", "purge"], SETTINGS, worker_env)
    assert "Total dead letters: 2" in out and "Purged" in out
    assert broker.count(names.dead_letter_queue) == 0
