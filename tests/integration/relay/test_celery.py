"""A real Celery worker with beat drains the outbox; overlapping runs publish nothing twice."""

import datetime
import importlib.util
import os
import re
import signal
import subprocess
import sys

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
# matrix has no `celery` extra; the README says so.
@pytest.mark.skipif(importlib.util.find_spec("django_celery_beat") is None,
                    reason="django-celery-beat is not installable with this Django")
def test_celery_beat__drains_the_outbox_and_overlapping_runs_never_publish_twice(
    celery_env, collector, tmp_path
):
    _django(celery_env, "-m", "django", "migrate", "django_celery_beat", "--noinput")
    queue = celery_env["CQRS_RELAY_CELERY_QUEUE"]
    _django(celery_env, "-c", "import django; django.setup(); from cqrs_outbox import tasks; "
            f"tasks.schedule_drain(every=1, seconds=2.5, queue={queue!r})")
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
