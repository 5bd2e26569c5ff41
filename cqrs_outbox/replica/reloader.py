"""`cqrs_consume --reload`: restart the workers when their code changes, or on SIGHUP.

Built on Django's autoreloader, the one `runserver` uses. The command runs twice: a
parent that only starts the command again in a child process, and the child, which runs
the workers and, in a thread, Django's reloader over the Python files it has loaded.
When one changes, the child stops its workers (with the usual SIGINT and SIGKILL
timeouts) and exits with RELOAD_EXIT, and the parent starts a fresh child, which imports
the new code. SIGHUP to the parent restarts the child as well; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.utils import autoreload

from cqrs_outbox.replica import workers

logger = logging.getLogger(__name__)

POLL = 0.2  # seconds between looks at the child and the parent's signals
STOP_MARGIN = 2.0  # seconds the parent adds to the child's own stop timeouts


def in_child() -> bool:
    """Tell whether this process is the reloading parent's child."""
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


def ignored_paths(text: str | None) -> list[Path]:
    """Parse `--ignore-paths`: comma-separated directories, relative to the working one."""
    if not text:
        return []
    return [Path(part.strip()).resolve() for part in text.split(",") if part.strip()]


def run_parent(timeouts: workers.StopTimeouts) -> int:
    """Run this command as a child, again after each reload; return its exit status.

    The status is 0 after SIGTERM or SIGINT, else that of the child's last exit that was
    not a reload.
    """
    stopping, restart = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *args: stopping.set())
    signal.signal(signal.SIGHUP, lambda *args: restart.set())
    env = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
    while True:
        child = subprocess.Popen(autoreload.get_child_arguments(), env=env, close_fds=False,
                                 start_new_session=True)
        logger.info("Consumer process with pid %s started", child.pid)
        code = _wait(child, stopping, restart, timeouts)
        if stopping.is_set():
            return 0
        if restart.is_set():
            restart.clear()
        elif code != workers.RELOAD_EXIT:
            return code


def _wait(child: subprocess.Popen, stopping: threading.Event, restart: threading.Event,
          timeouts: workers.StopTimeouts) -> int:
    while child.poll() is None:
        if stopping.is_set() or restart.is_set():
            _stop(child, timeouts)
            break
        stopping.wait(POLL)
    return child.wait()


def _stop(child: subprocess.Popen, timeouts: workers.StopTimeouts) -> None:
    """SIGINT the child; kill its whole process group if it outlives its own timeouts."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeouts.sigint + timeouts.sigkill + STOP_MARGIN)
    except subprocess.TimeoutExpired:
        logger.warning("Consumer process %s did not stop; sending SIGKILL", child.pid)
        os.killpg(child.pid, signal.SIGKILL)
    logger.info("Consumer process with pid %s stopped.", child.pid)


def watch(ignore: list[Path]) -> Any:
    """Start Django's reloader in a thread; on a change, stop the workers for a reload.

    The workers are stopped as by Ctrl-C (SIGINT to this process), and the exit is marked
    as a reload, so that the parent starts the command again.
    """
    reloader = _filtered(type(autoreload.get_reloader()), ignore)()

    def changed(sender: Any, file_path: Path, **kwargs: Any) -> bool:
        logger.warning("Detected changes in %s. Reloading...", file_path)
        workers.reload_requested.set()
        reloader.stop()
        os.kill(os.getpid(), signal.SIGINT)
        return True  # handled: keeps Django from exiting the reloader's thread itself

    autoreload.file_changed.connect(changed, sender=reloader, weak=False)
    thread = threading.Thread(target=reloader.run, args=(threading.main_thread(),),
                              name="cqrs-consume-reloader", daemon=True)
    thread.start()
    return reloader


def _filtered(base: type, ignore: list[Path]) -> type:
    class Filtered(base):  # type: ignore[valid-type, misc]
        def watched_files(self, include_globs: bool = True) -> Iterator[Path]:
            yield from _outside(super().watched_files(include_globs), ignore)

    return Filtered


def _outside(paths: Iterable[Path], ignore: list[Path]) -> Iterator[Path]:
    for path in paths:
        if not any(path.is_relative_to(root) for root in ignore):
            yield path
