"""Long commands draw a progress line on a terminal and stay quiet in a pipe.

The line has django-cqrs's words: "Processing N records with batch size B" first, then
"n of N processed - p% with rate r rps, to go t ...".
"""

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
    assert "Processing 5 records with batch size 2" in terminal
    assert "\r5 of 5 processed - 100% with rate " in terminal
    assert "processed" not in out  # the data on stdout carries no progress
    assert len(out.splitlines()) == 6


def test_progress__quiet_in_a_pipe(authors):
    result = subprocess.run(COMMAND, capture_output=True, text=True, cwd=ROOT, env=child_env())
    assert result.returncode == 0
    assert "\r" not in result.stderr and "processed -" not in result.stderr
    assert result.stderr.strip() == "Done!\n5 instance(s) saved.\n5 instance(s) processed."


def test_progress__asked_for_in_a_pipe_writes_plain_lines(authors):
    result = subprocess.run(
        [*COMMAND, "--progress"], capture_output=True, text=True, cwd=ROOT, env=child_env()
    )
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "Processing 5 records with batch size 2"
    assert lines[1].startswith("2 of 5 processed - 40% with rate ")
    assert [line.split(" with rate")[0] for line in lines[1:4]] == [
        "2 of 5 processed - 40%", "4 of 5 processed - 80%", "5 of 5 processed - 100%"]
