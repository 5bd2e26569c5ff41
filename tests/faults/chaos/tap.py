"""A queue bound to every routing key of the run's exchange, counting what the relays sent.

The relay puts the outbox event id in each message's `message_id`, so counting ids gives
the deliveries per event: more than one is a duplicate, none is an event the broker
never got. The tap reads on a thread of its own, over a connection of its own that no
proxy cuts, so it sees the exchange as it is.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pika

from tests.faults.chaos import resources

PREFETCH = 2000  # messages the tap may hold unacknowledged
TICK = 0.2  # seconds per turn of the reading loop
QUIET = 1.0  # seconds without a message (and an empty queue) that end a drain
DRAIN_TIMEOUT = 120.0  # seconds


class Tap:
    """Count deliveries per event id on a reading thread."""

    def __init__(self, names: resources.Names) -> None:
        self.queue = names.tap_queue
        self.total = 0
        self.foreign = 0  # messages whose id is not an event id
        self._counts = bytearray()
        self._lock = threading.Lock()
        self._draining = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._connection = pika.BlockingConnection(pika.URLParameters(resources.BROKER_URL))
        self._channel = self._connection.channel()
        self._channel.queue_declare(self.queue, durable=True)
        self._channel.queue_bind(self.queue, names.exchange, "#")
        self._channel.basic_qos(prefetch_count=PREFETCH)
        self._channel.basic_consume(self.queue, self._on_message, auto_ack=True)
        self._thread = threading.Thread(target=self._run, name="chaos-tap", daemon=True)
        self._thread.start()

    def ids(self) -> set[int]:
        """Return the event ids delivered at least once."""
        with self._lock:
            return {i for i, count in enumerate(self._counts) if count}

    @property
    def distinct(self) -> int:
        with self._lock:
            return sum(1 for count in self._counts if count)

    @property
    def duplicates(self) -> int:
        """Return deliveries beyond the first of each event."""
        return self.total - self.foreign - self.distinct

    def drain(self) -> None:
        """Read until the queue is empty and quiet (call once the relays stopped)."""
        self._draining.set()
        self._thread.join(DRAIN_TIMEOUT)
        if self._error is not None:
            raise RuntimeError(f"the tap failed: {self._error!r}") from self._error
        if self._thread.is_alive():
            raise RuntimeError(f"the tap did not drain within {DRAIN_TIMEOUT}s")

    def close(self) -> None:
        """Stop reading and close the connection."""
        self._stop.set()
        self._thread.join(DRAIN_TIMEOUT)
        if self._connection.is_open:
            self._connection.close()

    def _run(self) -> None:
        try:
            quiet_since = None
            while not self._stop.is_set():
                before = self.total
                self._connection.process_data_events(time_limit=TICK)
                if not self._draining.is_set():
                    continue
                if self.total != before or self._ready():
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= QUIET:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by drain()
            self._error = exc

    def _ready(self) -> int:
        return self._channel.queue_declare(self.queue, passive=True).method.message_count

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.total += 1
        message_id = properties.message_id or ""
        if not message_id.isdigit():
            self.foreign += 1
            return
        event_id = int(message_id)
        with self._lock:
            if event_id >= len(self._counts):
                self._counts.extend(bytes(event_id + 1024 - len(self._counts)))
            self._counts[event_id] = min(255, self._counts[event_id] + 1)
