"""Child processes a test starts, kills and starts again, each logging to a file.

    service = Service("relay-a", [sys.executable, "-m", "relay", ...], env, log_dir)
    service.start()
    service.kill()      # SIGKILL to its whole process group, as an OOM killer would
    service.start()     # the same command again; the log file is appended to
    service.terminate() # SIGTERM, wait, return the exit status

Each start runs in a session of its own (so a kill reaches its forked children too) and
asks Linux to SIGKILL it should the test process die first, so no child outlives a
test that was killed. Start services from the main thread: the kernel's parent-death
signal follows the thread that forked.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KILL_WAIT = 10.0  # seconds a killed process may take to be reaped
PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent dies


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Service:
    """One command of the test, restartable, with its output appended to `<name>.log`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0
        self._process: subprocess.Popen | None = None
        self._terminated = False  # SIGTERM sent to the current run
        self._started_at = 0.0  # monotonic time of the last start

    @property
    def alive(self) -> bool:
        """Return whether the current run is still going."""
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """Return the exit status of the last run, or None while it runs (or never ran)."""
        return None if self._process is None else self._process.poll()

    @property
    def uptime(self) -> float:
        """Return the seconds since the last start."""
        return time.monotonic() - self._started_at

    def start(self) -> Service:
        """Start the command (again), appending to the log file."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self._reap()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} of {self.name}\n".encode())
            log.flush()
            self._terminated = False
            self._started_at = time.monotonic()
            self._process = subprocess.Popen(
                self.argv, cwd=ROOT, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the process and everything it forked; wait until it is gone."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(KILL_WAIT)

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM, wait up to `timeout` seconds; return the exit status (None: still up).

        The signal goes once per run: a second one could land while the process exits
        and its handlers are gone, killing it in the middle of a clean stop.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None and not self._terminated:
            self._terminated = True
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        """Return everything the service wrote so far, across starts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait(KILL_WAIT)
