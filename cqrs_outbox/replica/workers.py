"""Run N consumer processes and stop them together.

One worker runs in the calling process. More are forked children: the parent forwards
SIGTERM and SIGINT to them, restarts one that dies unexpectedly, and returns once all
have stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from relay.exceptions import ConfigurationError, FatalError

logger = logging.getLogger(__name__)

JOIN_INTERVAL = 0.5  # seconds between checks on the children
RESTART_DELAY = 1.0  # seconds before a crashed worker is started again
FATAL_EXIT = 3  # exit status of a worker that restarting cannot help (bad configuration)


def run(count: int, target: Callable[[], None]) -> None:
    """Run `target` in `count` processes (in this one when count is 1) until stopped."""
    if count <= 1:
        target()
        return
    supervisor = Supervisor(count, target)
    supervisor.run()
    if supervisor.failed:
        raise ConfigurationError("a worker stopped on an error restarting cannot fix; see its log")


class Supervisor:
    """Keeps `count` forked workers alive until SIGTERM or SIGINT."""

    def __init__(self, count: int, target: Callable[[], None]) -> None:
        self.count = count
        self.target = target
        self.stopping = threading.Event()
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

    def _start(self, index: int) -> Any:
        process = self.context.Process(target=self._child, name=f"cqrs-consume-{index}")
        process.start()
        logger.info("Started worker %s (pid %s)", index, process.pid)
        return process

    def _child(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        try:
            self.target()
        except FatalError as exc:
            logger.error("Worker stopped: %s", exc)
            sys.exit(FATAL_EXIT)

    def _stop(self, *args: Any) -> None:
        self.stopping.set()
        for child in self.children:
            if child.pid and child.exitcode is None:
                try:
                    os.kill(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
