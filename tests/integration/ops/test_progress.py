"""Long commands draw a progress bar on a terminal and stay quiet in a pipe."""

import os
import pty
import subprocess
import sys

import pytest

from tests.integration.ops.conftest import ROOT, child_env
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

COMMAND = [sys.executable, "-m", "django", "cqrs_bulk_dump", "-c", "author", "-o", "-", "-b", "2"]


@pytest.fixture
def authors():
    return [models.Author.objects.create(name=f"a{i}") for i in range(5)]


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_progress__bar_on_a_terminal(authors):
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        COMMAND, stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, env=child_env(), text=True
    )
    os.close(follower)
    out, _ = child.communicate(timeout=120)
    terminal = _read_all(leader)
    os.close(leader)
    assert child.returncode == 0
    assert "\r[" in terminal and "5/5 rows 100%" in terminal
    assert "[" not in out.splitlines()[0]  # the data on stdout carries no bar
    assert len(out.splitlines()) == 6


def test_progress__quiet_in_a_pipe(authors):
    result = subprocess.run(COMMAND, capture_output=True, text=True, cwd=ROOT, env=child_env())
    assert result.returncode == 0
    assert "\r" not in result.stderr and "rows" not in result.stderr
    assert result.stderr.strip() == "Done!\n5 instance(s) saved.\n5 instance(s) processed."


def test_progress__asked_for_in_a_pipe_writes_plain_lines(authors):
    result = subprocess.run(
        [*COMMAND, "--progress"], capture_output=True, text=True, cwd=ROOT, env=child_env()
    )
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "rows" in line]
    assert lines[-1].startswith("[") and "5/5 rows 100%" in lines[-1]
