"""A refused login or a missing vhost is fatal for the consumer and the relay alike.

On the real broker: a wrong password for the real user, and a vhost that does not exist
(nothing is created on the broker). Each process exits 1 within 10 seconds with one line
naming the user, the host and what to fix, and no traceback.
"""

import os
import subprocess
import sys

import pytest
from django.db import connections

from tests.acceptance.replica import support

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SETTINGS = "tests.testproject.settings"
LIMIT = 10  # seconds a process may take to give up
PASSWORD = "Wr0ng-pa#ss/word"
REFUSED = {
    "wrong-password": ("amqp://guest:Wr0ng-pa%23ss%2Fword@127.0.0.1:5672/%2F",
                       ["refused the login of user 'guest'", "127.0.0.1:5672", "password"]),
    "missing-vhost": ("amqp://guest:guest@127.0.0.1:5672/cqrs_no_such_vhost",
                      ["refused user 'guest' the vhost 'cqrs_no_such_vhost'", "127.0.0.1:5672",
                       "does not exist", "add_vhost"]),
}


def _run(argv, env):
    """Run a process; return its exit status and its output lines after the start-up line.

    `cqrs_consume` prints its start-up line before it connects (password masked, which
    is asserted); what matters here is the one line it prints when the broker refuses.
    """
    done = subprocess.run([sys.executable, *argv], cwd=support.ROOT, capture_output=True,
                          text=True, timeout=LIMIT, env={**os.environ, **env})
    lines = (done.stdout + done.stderr).strip().splitlines()
    started = [line for line in lines if line.startswith(support.CONSUMER_STARTUP)]
    assert not any(PASSWORD in line or "Wr0ng" in line for line in started), started
    return done.returncode, [line for line in lines if line not in started]


def _assert_one_fatal_line(code, lines, words):
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    assert PASSWORD not in lines[0] and "Wr0ng" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_consumer__refused_login_exits_1_with_one_line(case, worker_env):
    url, words = REFUSED[case]
    code, lines = _run(["-m", "django", "cqrs_consume", f"--settings={SETTINGS}"],
                       {**worker_env, "CQRS_BROKER_URL": url})
    _assert_one_fatal_line(code, lines, words)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_consumer_with_two_workers__refused_login_exits_1(case, worker_env):
    url, _ = REFUSED[case]
    code, lines = _run(["-m", "django", "cqrs_consume", "-w", "2", f"--settings={SETTINGS}"],
                       {**worker_env, "CQRS_BROKER_URL": url})
    assert code == 1, lines
    assert not any("Traceback" in line for line in lines), lines
    assert not any("Wr0ng" in line for line in lines), lines


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_relay__refused_login_exits_1_with_one_line(case, transactional_db):
    url, words = REFUSED[case]
    database = connections["default"].settings_dict["NAME"]
    code, lines = _run(["-m", "relay", "--database-url",
                        f"postgresql://postgres@127.0.0.1:5432/{database}", "--broker-url", url],
                       {})
    _assert_one_fatal_line(code, lines, words)
    assert lines[0].startswith("relay: error: ")


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_relay_command__refused_login_exits_1_with_one_line(case, worker_env):
    url, words = REFUSED[case]
    code, lines = _run(["-m", "django", "cqrs_relay", f"--settings={SETTINGS}"],
                       {**worker_env, "CQRS_BROKER_URL": url})
    _assert_one_fatal_line(code, lines, words)
