"""Names of the broker objects and folders a test run makes, and the check that none is left.

Every queue and exchange a test declares carries this run's id (`unique()`), so at the
end of the run the objects still on the broker under that id are leaks of this run, and
never those of another run going on beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
import uuid

BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
LIST_TIMEOUT = 30  # seconds for one rabbitmqctl listing


# A run that found its id in the environment was started by another run (a nested pytest,
# a worker process), whose objects are still in use: only the run that made the id checks.
OWNS_RUN_ID = "CQRS_TEST_RUN_ID" not in os.environ


def run_id() -> str:
    """Return this run's id, shared with the processes the tests start."""
    return os.environ.setdefault("CQRS_TEST_RUN_ID", uuid.uuid4().hex[:8])


def unique(prefix: str) -> str:
    """Return a broker object name of this run and this test only."""
    return f"{prefix}_{run_id()}_{uuid.uuid4().hex[:6]}"


def _vhost() -> str:
    path = urllib.parse.urlsplit(BROKER_URL).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def _listing(kind: str) -> list[str] | None:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", "-p", _vhost(), f"list_{kind}", "name"],
                              capture_output=True, text=True, timeout=LIST_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [line.strip() for line in done.stdout.splitlines()[1:] if line.strip()]


def left_on_broker() -> list[str] | None:
    """Return the queues and exchanges of this run still on the broker, or None when the
    broker cannot be listed here (no rabbitmqctl, or not allowed to use it). A run whose
    id came from the environment reports nothing: the run that made the id checks."""
    if not OWNS_RUN_ID:
        return []
    if shutil.which("rabbitmqctl") is None:
        return None
    marker = f"_{run_id()}"
    found = []
    for kind in ("queues", "exchanges"):
        names = _listing(kind)
        if names is None:
            return None
        found += [f"{kind[:-1]} {name}" for name in names if marker in name]
    return found


def delete(exchanges: tuple[str, ...] = (), queues: tuple[str, ...] = ()) -> None:
    """Delete these exchanges and queues on the broker, those that exist (a test's cleanup)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
    finally:
        connection.close()
