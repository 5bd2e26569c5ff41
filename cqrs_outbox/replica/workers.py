"""Run N consumer processes and stop them together.

One worker runs in the calling process. More are forked children: the parent sends them
SIGINT on SIGTERM or SIGINT, restarts one that dies unexpectedly, and returns once all
have stopped. As in django-cqrs, a worker still running `sigint` seconds after it was
told to stop is killed (SIGKILL), and the parent waits `sigkill` seconds more for it.
Its unacknowledged messages go back to the queue; its open transaction rolls back.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from cqrs_outbox.core.errors import ConfigurationError, FatalError

logger = logging.getLogger(__name__)

JOIN_INTERVAL = 0.5  # seconds between checks on the children
RESTART_DELAY = 1.0  # seconds before a crashed worker is started again
FATAL_EXIT = 3  # exit status of a worker that restarting cannot help (bad configuration)
RELOAD_EXIT = 3  # exit status asking the reloading parent to start the command again
DEFAULT_SIGINT_TIMEOUT = 5  # seconds a stopping worker gets before SIGKILL, as django-cqrs
DEFAULT_SIGKILL_TIMEOUT = 1  # seconds waited for a worker after SIGKILL, as django-cqrs

Target = Callable[[float | None], None]  # runs a worker; its argument: the stop grace

# Set when the code changed under `--reload`: once stopped, exit with RELOAD_EXIT.
reload_requested = threading.Event()

# Allocations between two collections of the youngest generation in a worker (Python's
# default is 700, 2,000 from 3.13): a worker makes some fifty objects an event, nearly
# all gone by the end of its batch, so collecting every dozen events only walks the
# batch in hand again and again.
GC_YOUNG_THRESHOLD = 20000


@dataclass(frozen=True)
class StopTimeouts:
    """How long a stopping worker gets before SIGKILL, and how long it is waited after."""

    sigint: float = DEFAULT_SIGINT_TIMEOUT
    sigkill: float = DEFAULT_SIGKILL_TIMEOUT


def tune_gc() -> None:
    """Set the garbage collector of a worker process for applying batches.

    What the process holds once started (Django, the models, the settings) moves out of
    the collector's sight (`gc.freeze()`), and the youngest generation is collected every
    GC_YOUNG_THRESHOLD allocations instead of Python's default. A threshold the project
    raised itself, or a collector it turned off, is left as it is. Measured with
    bench/replica.py, one worker: 3 to 5% more events a second.
    """
    if not gc.isenabled():
        return
    gc.freeze()
    young, *older = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *older)


def run(count: int, target: Target, timeouts: StopTimeouts | None = None) -> None:
    """Run `target` in `count` processes (in this one when count is 1) until stopped."""
    timeouts = timeouts or StopTimeouts()
    if count <= 1:
        target(timeouts.sigint)
        return
    supervisor = Supervisor(count, target, timeouts)
    supervisor.run()
    if supervisor.failed:
        raise ConfigurationError("a worker stopped on an error restarting cannot fix; see its log")


def install_stop_handlers(stop: Callable[[], None], grace: float | None) -> None:
    """Call `stop` on SIGTERM or SIGINT; exit at once if still running `grace` seconds later.

    The forced exit is the in-process counterpart of the SIGKILL a parent sends: what the
    worker holds unacknowledged goes back to the queue.
    """
    armed = threading.Event()

    def handler(*args: Any) -> None:
        stop()
        if grace is None or armed.is_set():
            return
        armed.set()
        timer = threading.Timer(grace, _force_exit, args=(grace,))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def _force_exit(grace: float) -> None:
    logger.warning("Worker did not stop within %ss of being told to; exiting at once", grace)
    logging.shutdown()
    os._exit(RELOAD_EXIT if reload_requested.is_set() else 0)


class Supervisor:
    """Keeps `count` forked workers alive until SIGTERM or SIGINT."""

    def __init__(self, count: int, target: Target, timeouts: StopTimeouts) -> None:
        self.count = count
        self.target = target
        self.timeouts = timeouts
        self.stopping = threading.Event()
        self.stop_started: float | None = None
        self.killed_at: float | None = None
        self.children: list[Any] = []
        self.context = multiprocessing.get_context("fork")
        self.failed = False

    def run(self) -> None:
        """Start the workers and wait for them; return after all have exited."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        connections.close_all()  # children must not share the parent's sockets
        self.children = [self._start(i) for i in range(self.count)]
        while self.children:
            for index, child in enumerate(list(self.children)):
                child.join(JOIN_INTERVAL / len(self.children))
                if child.exitcode is None:
                    continue
                self.children.remove(child)
                if child.exitcode == FATAL_EXIT:
                    self._stop()
                    self.failed = True
                elif not self.stopping.is_set():
                    logger.error("Worker %s exited with %s; restarting it", child.pid,
                                 child.exitcode)
                    self.stopping.wait(RESTART_DELAY)
                    if not self.stopping.is_set():
                        self.children.append(self._start(index))
            self._enforce_timeouts()

    def _enforce_timeouts(self) -> None:
        if self.stop_started is None:
            return
        now = time.monotonic()
        if self.killed_at is None and now - self.stop_started >= self.timeouts.sigint:
            self.killed_at = now
            for child in self.children:
                if child.exitcode is None:
                    logger.warning("Worker %s did not stop within %ss of SIGINT; sending "
                                   "SIGKILL", child.pid, self.timeouts.sigint)
                    _signal(child, signal.SIGKILL)
        elif self.killed_at is not None and now - self.killed_at >= self.timeouts.sigkill:
            for child in self.children:
                logger.error("Worker %s still running %ss after SIGKILL; leaving it",
                             child.pid, self.timeouts.sigkill)
            self.children = []

    def _start(self, index: int) -> Any:
        process = self.context.Process(target=self._child, name=f"cqrs-consume-{index}")
        process.start()
        logger.info("Started worker %s (pid %s)", index, process.pid)
        return process

    def _child(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        try:
            self.target(None)  # the parent enforces the timeouts
        except FatalError as exc:
            logger.error("Worker stopped: %s", exc)
            sys.exit(FATAL_EXIT)

    def _stop(self, *args: Any) -> None:
        self.stopping.set()
        if self.stop_started is None:
            self.stop_started = time.monotonic()
        for child in self.children:
            if child.exitcode is None:
                _signal(child, signal.SIGINT)


def _signal(child: Any, sig: int) -> None:
    if child.pid:
        try:
            os.kill(child.pid, sig)
        except ProcessLookupError:
            pass
