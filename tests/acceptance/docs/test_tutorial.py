"""The tutorial page, run as a reader runs it, so that it cannot rot.

docs/tutorial.md marks each block a reader types or pastes with an HTML comment that the
site does not show (the markers are listed in docs/development.md). This test reads the
page and does what it says, in order, in a temporary folder: a copy of the checkout
stands for the page's `git clone`; `python3` is the interpreter running the test, so the
fresh virtualenv of the page's first step, and everything pip installs into it from the
checkout and the package index, depends on nothing else of this machine's Python. The
commands the page starts in other terminals (the consumer, then the relay) run in the
background until the end, when they get Ctrl-C, as the page says, and must exit 0.

The page's settings read the broker's exchange and queue from the environment, so the
test gives them names of this run; it deletes them after, with the folder and any
process still running, whatever the outcome.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
from pika import exceptions as pika_exceptions

from tests.support import names

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "tutorial.md"
STEP = re.compile(
    r"^<!-- tutorial: (?P<action>[a-z]+)(?: (?P<arg>\S+))? -->\n```[\w-]*\n(?P<text>.*?)^```",
    re.M | re.S,
)
MARKER = re.compile(r"<!-- tutorial:")
ACTIONS = {"run", "write", "append", "start", "check", "output"}
# What a `git clone` would not bring: local environments, caches and build output.
NOT_CLONED = shutil.ignore_patterns(".git", ".venv", ".nox", ".reports", "build", "dist",
                                    "site", "tmp", "*.egg-info", "__pycache__", ".*_cache",
                                    "*.sqlite3")
# The test's own environment must not leak into the reader's shell.
NOT_INHERITED = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                 "PYTHONSTARTUP"}
RUN_TIMEOUT = 600  # seconds one block may take (the first one installs)
CHECK_WAIT = 120  # seconds a check may take to print what the page says it prints
CHECK_PAUSE = 0.5  # seconds between two tries of a check
START_WAIT = 60  # seconds a started command may take to say it runs
STOP_WAIT = 60  # seconds a started command may take to exit after Ctrl-C
PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent dies


@dataclass(frozen=True)
class Step:
    """One marked block of the page: what to do with it, its argument, its text."""

    action: str
    arg: str | None
    text: str


def page_steps() -> list[Step]:
    """Return the page's marked blocks, in order."""
    return [Step(m["action"], m["arg"], m["text"]) for m in STEP.finditer(PAGE.read_text())]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def queue_consumers(queue: str) -> int:
    """Return how many consumers the broker counts on `queue` (0 when it does not exist)."""
    connection = pika.BlockingConnection(pika.URLParameters(names.BROKER_URL))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika_exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if connection.is_open:
            connection.close()


class Tutorial:
    """The reader's folder and shell: runs, writes, starts and checks the page's blocks."""

    def __init__(self, folder: Path, exchange: str, queue: str) -> None:
        self.folder = folder
        self.queue = queue
        self.started: dict[str, subprocess.Popen] = {}
        self.env = self._environment(exchange, queue)

    def _environment(self, exchange: str, queue: str) -> dict[str, str]:
        """Return the reader's environment: `python3` is the test's interpreter until the
        page's virtualenv exists, then the virtualenv's, as after `activate`."""
        shim = self.folder.parent / f"{self.folder.name}-bin"
        shim.mkdir()
        for name in ("python3", "python"):
            script = shim / name
            script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            script.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        path = [str(self.folder / ".venv" / "bin"), str(shim), env.get("PATH", "")]
        env.update(PATH=os.pathsep.join(path), PYTHONUNBUFFERED="1",
                   BROKER_URL=names.BROKER_URL, BROKER_EXCHANGE=exchange, BROKER_QUEUE=queue)
        return env

    def shell(self, text: str) -> subprocess.CompletedProcess:
        """Run a block with bash in the tutorial's folder, as pasted into a terminal."""
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=self.folder,
                              env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)

    def run(self, text: str) -> None:
        done = self.shell(text)
        assert done.returncode == 0, self.report(f"this block exited {done.returncode}:\n"
                                                 f"{text}\n{done.stdout}\n{done.stderr}")

    def write(self, path: str, text: str, mode: str) -> None:
        target = self.folder / path
        assert target.parent.is_dir(), self.report(f"{path}: its folder does not exist")
        with target.open(mode) as file:
            file.write(("\n" if mode == "a" else "") + text)

    def check(self, text: str, expected: str) -> None:
        """Run a check until its output holds every line of `expected`."""
        wanted = [line for line in expected.splitlines() if line.strip()]
        deadline = time.monotonic() + CHECK_WAIT
        while True:
            done = self.shell(text)
            lines = done.stdout.splitlines()
            if done.returncode == 0 and all(line in lines for line in wanted):
                return
            if time.monotonic() > deadline:
                raise AssertionError(self.report(
                    f"after {CHECK_WAIT} s this check still did not print {wanted}:\n{text}\n"
                    f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"))
            time.sleep(CHECK_PAUSE)

    def start(self, name: str, text: str) -> None:
        """Start a one-line command in the background, as in another terminal, and wait
        until it says it runs (its start-up line). The page starts the consumer so that
        the queue exists before the relay publishes; its start-up line comes before the
        queue is bound, so for the consumer the broker must also count it on the queue."""
        command = text.strip()
        assert "\n" not in command and name not in self.started, self.report(command)
        log = (self.folder.parent / f"{self.folder.name}-{name}.log").open("wb")
        self.started[name] = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.folder, env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self._wait_for(name, lambda: self.log(name).strip(), "its start-up line")
        if name == "consumer":
            self._wait_for(name, lambda: queue_consumers(self.queue), "its queue's consumer")

    def _wait_for(self, name: str, predicate, what: str) -> None:
        deadline = time.monotonic() + START_WAIT
        while not predicate():
            process = self.started[name]
            assert process.poll() is None, self.report(f"{name} exited {process.returncode}")
            assert time.monotonic() < deadline, self.report(f"{name}: no sign of {what}")
            time.sleep(CHECK_PAUSE)

    def interrupt(self, name: str) -> int | None:
        """Press Ctrl-C in the command's terminal; return its exit status (None: still up)."""
        process = self.started[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            return process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            return None

    def kill_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_WAIT)

    def log(self, name: str) -> str:
        path = self.folder.parent / f"{self.folder.name}-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def report(self, message: str) -> str:
        """Return `message` with what the started commands wrote so far."""
        logs = "".join(f"\n--- {name}:\n{self.log(name)}" for name in self.started)
        return message + logs


@pytest.fixture
def tutorial() -> Iterator[Tutorial]:
    """A folder holding a copy of the checkout, as the page's `git clone` leaves it."""
    base = Path(tempfile.mkdtemp(prefix="cqrs-tutorial-"))
    folder = base / "tutorial"
    shutil.copytree(ROOT, folder / "cqrs-outbox", ignore=NOT_CLONED)
    exchange, queue = names.unique("tutorial_ex"), names.unique("tutorial")
    reader = Tutorial(folder, exchange, queue)
    try:
        yield reader
    finally:
        reader.kill_all()
        names.delete(exchanges=(exchange,),
                     queues=(queue, f"dead_letter_{queue}", f"{queue}.delay"))
        shutil.rmtree(base, ignore_errors=True)


def test_tutorial_page__every_marked_block_is_a_step_the_test_knows() -> None:
    """A marker the test does not understand, or a check without its output, would let a
    block go untested."""
    steps = page_steps()
    assert len(steps) == len(MARKER.findall(PAGE.read_text())), "a marker is not on a block"
    assert {step.action for step in steps} == ACTIONS
    for before, step in zip(steps, steps[1:], strict=False):
        assert (before.action == "check") == (step.action == "output"), (before, step)
    for step in steps:
        assert (step.arg is not None) == (step.action in {"write", "append", "start"}), step
    started = [step.arg for step in steps if step.action == "start"]
    assert started == ["consumer", "relay"], "the consumer must start before the relay"


@pytest.mark.slow
@pytest.mark.broker
def test_tutorial__runs_as_written_and_the_rows_reach_the_replica(tutorial: Tutorial) -> None:
    steps = page_steps()
    for step, after in zip(steps, [*steps[1:], None], strict=True):
        if step.action == "run":
            tutorial.run(step.text)
        elif step.action in ("write", "append"):
            tutorial.write(step.arg, step.text, "w" if step.action == "write" else "a")
        elif step.action == "start":
            tutorial.start(step.arg, step.text)
        elif step.action == "check":
            tutorial.check(step.text, after.text)
    # The page's last word: Ctrl-C in the relay's terminal, then in the consumer's.
    for name in reversed(list(tutorial.started)):
        status = tutorial.interrupt(name)
        assert status == 0, tutorial.report(f"{name} exited {status} after Ctrl-C")
