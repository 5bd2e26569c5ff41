"""Run replica workers as separate processes and look at queues, for the replica tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pika

from tests.support import names

ROOT = Path(__file__).resolve().parents[3]
BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WAIT = 60.0  # seconds a test waits for a worker to get somewhere before failing
CONSUMER_STARTUP = "consuming queue "  # how the start-up line of cqrs_consume begins




class Broker:
    """A pika connection of the test's own, to publish bodies and read queues."""

    def __init__(self, exchange: str, url: str = BROKER_URL) -> None:
        self.exchange = exchange
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, body: Any, routing_key: str, **props: Any) -> None:
        """Publish a body (dict -> JSON, str/bytes as is) to the exchange, persistent."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.channel.basic_publish(
            self.exchange, routing_key, body, mandatory=True,
            properties=pika.BasicProperties(content_type="text/plain", delivery_mode=2, **props),
        )

    def count(self, queue: str) -> int:
        """Return how many messages wait (ready) in `queue`."""
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def take_all(self, queue: str) -> list[tuple[Any, bytes]]:
        """Remove and return every (properties, body) of `queue`."""
        found = []
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((props, body))

    def delete(self, *queues: str) -> None:
        """Delete queues and the exchange."""
        for queue in queues:
            self.channel.queue_delete(queue)
        self.channel.exchange_delete(self.exchange)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


unique = names.unique


class Process:
    """A `python -m django <command>` (or any module) of the test, logging to a file."""

    def __init__(self, args: list[str], env: dict, log: Path) -> None:
        self.log_path = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
            stdout=self.handle, stderr=subprocess.STDOUT,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """Send SIGTERM and return the exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> int:
        """Send SIGKILL and return the exit code."""
        if self.alive:
            self.proc.kill()
        return self.proc.wait(10)

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.alive:
            self.kill()
        self.handle.close()


def django(command: list[str], settings: str, env: dict, log: Path) -> Process:
    """Start a management command of the project whose settings module is `settings`."""
    return Process(["-m", "django", command[0], f"--settings={settings}", *command[1:]], env, log)


def run_django(command: list[str], settings: str, env: dict, timeout: float = WAIT) -> str:
    """Run a management command to the end and return its output; fail if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "django", command[0], f"--settings={settings}", *command[1:]],
        cwd=ROOT,
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
