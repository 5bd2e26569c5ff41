"""A real Celery worker with beat drains the outbox; overlapping runs publish nothing twice."""

import datetime
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from cqrs_outbox.models import OutboxEvent
from tests.integration.relay import support
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.mysql,
    pytest.mark.broker,
    pytest.mark.slow,
]

SETTINGS = "tests.integration.relay.celery_settings"
RUN = re.compile(r"\[([\d-]+ [\d:,]+): \w+/[\w-]+\] relay (\S+) (running|stopped)")


@pytest.fixture
def celery_env(exchange):
    queue = support.unique("relay_celery_q")
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        CQRS_RELAY_CELERY_DB=connection.settings_dict["NAME"],
        CQRS_RELAY_CELERY_QUEUE=queue,
        CQRS_TEST_EXCHANGE=exchange,
    )
    yield env
    broker = support.Collector(exchange)  # a connection of our own, to clean up
    broker.channel.queue_delete(queue)
    broker.channel.exchange_delete(queue)
    broker.close()


def _django(env, *args):
    result = subprocess.run([sys.executable, *args], env=env, cwd=support.ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _worker(env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.integration.relay.celery_app", "worker",
         "--beat", "-Q", env["CQRS_RELAY_CELERY_QUEUE"], "--concurrency", "3",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        env=env, cwd=support.ROOT, stdout=log, stderr=subprocess.STDOUT,
    )


def _runs(log_text):
    """Return (start, end) of every relay run the worker logged."""
    times = {}
    for stamp, owner, what in RUN.findall(log_text):
        moment = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        times.setdefault(owner, {})[what] = moment
    return [(t["running"], t["stopped"]) for t in times.values() if len(t) == 2]


# django-celery-beat 2.9 caps Django below 6.1, so the Django 6.1 combination of the test
# matrix has no `celery` extra; the Installation page says so.
@pytest.mark.skipif(importlib.util.find_spec("django_celery_beat") is None,
                    reason="django-celery-beat is not installable with this Django")
def test_celery_beat__drains_the_outbox_and_overlapping_runs_never_publish_twice(
    celery_env, collector, tmp_path
):
    _django(celery_env, "-m", "django", "migrate", "django_celery_beat", "--noinput")
    queue = celery_env["CQRS_RELAY_CELERY_QUEUE"]
    # Runs that keep going for all of their 2.5 s (once=False), started every second: they
    # overlap, which is what this test is about.
    _django(celery_env, "-c", "import django, json; django.setup(); "
            "from cqrs_outbox import tasks; from django_celery_beat.models import PeriodicTask; "
            f"task = tasks.schedule_drain(every=1, seconds=2.5, queue={queue!r}); "
            "task.kwargs = json.dumps({**json.loads(task.kwargs), 'once': False}); task.save()")
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = _worker(celery_env, log)
    try:
        with support.Writer(pause=0.01):
            wait_until(lambda: len(_runs(log_path.read_text())) >= 3, timeout=90,
                               what="three drain runs")
        ids = list(OutboxEvent.objects.values_list("id", flat=True))
        collector.collect(ids)
        wait_until(lambda: set(support.outbox_counts()) == {"published"})
        collector.settle(quiet=1.0)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert collector.duplicates() == 0
    runs = sorted(_runs(log_path.read_text()))
    overlapping = [(a, b) for a, b in zip(runs, runs[1:], strict=False) if b[0] < a[1]]
    assert overlapping, f"no two drain runs overlapped: {runs}"


BACKLOG = 20_000  # events waiting in the outbox when the worker starts
BUDGET = 0.5  # seconds of one drain run in this test (the default is DRAIN_BUDGET)
SLACK = 5.0  # seconds a run may take past its budget: connecting, the last confirm
PENDING_NOW = re.compile(r"pending now: (\d+)")


def _send(env, task, **kwargs):
    """Send one task to the worker's queue, as beat (or the caller) would."""
    from celery import Celery

    app = Celery(broker=support.BROKER_URL)
    try:
        app.send_task(task, kwargs=kwargs, queue=env["CQRS_RELAY_CELERY_QUEUE"])
    finally:
        app.close()


def _solo_worker(env, log):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.integration.relay.celery_app", "worker",
         "-Q", env["CQRS_RELAY_CELERY_QUEUE"], "--pool", "solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        env=env, cwd=support.ROOT, stdout=log, stderr=subprocess.STDOUT,
    )


def test_celery_drain__a_backlog_leaves_the_worker_free_between_runs_of_one_budget(
    celery_env, collector, tmp_path
):
    """A 20,000-event backlog drains in runs of one budget each, every run sending itself
    again behind the tasks already queued: a task sent after the drain runs while events
    are still pending, and a warm shutdown mid-backlog ends within a budget (plus slack).
    A second worker finishes the backlog from the re-sent run; nothing is sent twice."""
    ids = support.write_events((("author", pk, 0) for pk in range(BACKLOG)), chunk=5000)
    _send(celery_env, "cqrs_outbox.drain_outbox", seconds=BUDGET)
    _send(celery_env, "tests.pending_now")
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = _solo_worker(celery_env, log)
    try:
        wait_until(lambda: PENDING_NOW.search(log_path.read_text()), timeout=120,
                   what="the task sent behind the drain")
        wait_until(lambda: len(_runs(log_path.read_text())) >= 2, timeout=60,
                   what="a second drain run")
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        shutdown = time.monotonic() - asked
    finally:
        if worker.poll() is None:
            worker.kill()
    first_log = log_path.read_text()
    pending_seen = int(PENDING_NOW.search(first_log).group(1))
    runs = _runs(first_log)
    with open(tmp_path / "second.log", "w") as log:
        second = _solo_worker(celery_env, log)
    try:
        collector.collect(ids, timeout=180)
        collector.settle(quiet=1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    print(f"pending when the worker was free: {pending_seen}; shutdown took {shutdown:.2f} s;"
          f" runs: {[round((b - a).total_seconds(), 2) for a, b in runs]}")
    assert 0 < pending_seen < BACKLOG
    assert all((end - start).total_seconds() <= BUDGET + SLACK for start, end in runs), runs
    assert shutdown <= BUDGET + SLACK + 10  # the worker's own shutdown on top of the run
    assert set(support.outbox_counts()) == {"published"}
    assert collector.duplicates() == 0
