"""`cqrs_consume` options as django-cqrs has them: -cid, --sigint-timeout, --reload."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WATCHED = Path(models.__file__)  # loaded by every worker, so --reload watches it


def _run(settings, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "django", "cqrs_consume", f"--settings={settings}", *args],
        cwd=support.ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=120,
    )


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)


def _state(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


def test_wrong_cqrs_id__same_line_and_exit_status_as_django_cqrs(worker_env):
    ours = _run("tests.testproject.settings", "-cid", "nope", env=worker_env)
    theirs = _run("tests.peers.replica_settings", "-cid", "nope",
                  env={"CQRS_PEER_DB_NAME": worker_env["CQRS_TEST_DB_NAME"]})
    assert ours.returncode == theirs.returncode == 1
    line = "CommandError: Wrong CQRS ID: nope!"
    assert theirs.stderr.strip().splitlines()[-1] == line
    assert ours.stderr.strip().splitlines()[-1] == line


def test_cqrs_id_of_abstract_replica__accepted_and_its_events_reach_its_handlers(
        broker, start_worker):
    worker = start_worker("-cid", "no_table")
    broker.publish(ev.save("no_table", 1, 0, name="a"), "no_table")
    broker.publish(ev.delete("no_table", 1, 1), "no_table")
    wait_until(lambda: models.RawLog.objects.count() == 2, what="both events handled")
    assert list(models.RawLog.objects.order_by("id").values_list("signal_type", "pk_value")) == [
        ("SAVE", "1"), ("DELETE", "1"),
    ]
    assert worker.terminate() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_timeout__stalled_worker_is_killed_and_its_batch_comes_back(
        broker, names, start_worker, worker_env, workers):
    broker.publish(ev.save("sleepy", 1, 0, name="120"), "sleepy")  # stalls its batch for 120s
    worker = start_worker("-w", workers, "--sigint-timeout", "1", "--sigkill-timeout", "1")
    wait_until((Path(worker_env["CQRS_TEST_CONTROL_DIR"]) / "sleepy.entered").exists,
               what="the stalled batch")
    assert worker.terminate(timeout=30) == 0  # 120s stall, yet the worker is gone
    assert "did not stop within 1s" in worker.log
    assert not models.SleepyRef.objects.exists()
    wait_until(lambda: broker.count(names.queue) == 1, what="the message back in the queue")

    again = start_worker()  # the marker is there: no stall this time
    wait_until(models.SleepyRef.objects.exists, what="the redelivered event applied")
    assert again.terminate() == 0


def test_reload__a_changed_file_restarts_the_worker_with_fresh_code(broker, start_worker):
    worker = start_worker("-r", "--ignore-paths", "node_modules,env")
    broker.publish(ev.save("author", 1, 0, name="a"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(pk=1).exists(), what="the first event")
    [first] = wait_until(lambda: _children(worker.proc.pid), what="the worker child")

    def touch():
        stamp = time.time()
        os.utime(WATCHED, (stamp, stamp))
        return "Reloading..." in worker.log

    wait_until(touch, what="the reload")
    [second] = wait_until(lambda: [p for p in _children(worker.proc.pid) if p != first],
                          what="a new worker child")
    assert not _alive(first)
    assert f"Detected changes in {WATCHED}" in worker.log

    broker.publish(ev.save("author", 2, 0, name="b"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(pk=2).exists(), what="the second event")
    assert worker.terminate() == 0
    assert not _alive(second)


def test_reload__sighup_restarts_the_worker(broker, start_worker):
    worker = start_worker("--reload")
    [first] = wait_until(lambda: _children(worker.proc.pid), what="the worker child")
    broker.publish(ev.save("author", 1, 0, name="a"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(pk=1).exists(), what="the first event")

    worker.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: [p for p in _children(worker.proc.pid) if p != first],
               what="a new worker child")
    broker.publish(ev.save("author", 2, 0, name="b"), "author")
    wait_until(lambda: models.AuthorRef.objects.filter(pk=2).exists(), what="the second event")
    assert worker.terminate() == 0
