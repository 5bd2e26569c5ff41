"""Waiting for processes to get somewhere, without timed assertions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WAIT = 60.0  # seconds a test waits for something before it fails
INTERVAL = 0.05  # seconds between polls


def wait_until(predicate: Callable[[], Any], what: str = "", timeout: float = WAIT) -> Any:
    """Poll `predicate` until it returns something truthy and return that; fail after
    `timeout` seconds, naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or predicate}")
        time.sleep(INTERVAL)
