"""Fixtures of the relay tests: a collecting queue, relay processes cleaned up after."""

import pytest
from django.conf import settings
from django.test import override_settings

from tests.integration.relay import support
from tests.support import names


@pytest.fixture
def exchange():
    """A topic exchange of this test only; the project's settings point at it."""
    name = support.unique("relay_test_ex")
    with override_settings(CQRS={**settings.CQRS, "exchange": name}):
        yield name
    names.delete(exchanges=(name,))


@pytest.fixture
def collector(exchange):
    """A queue bound to every routing key of the test's exchange."""
    box = support.Collector(exchange)
    yield box
    box.close()


@pytest.fixture
def refusing_route(collector):
    """Route `refused_here` to a queue that refuses every message (nack) and
    `nobody_binds` nowhere (returned); the collector keeps only `author`.
    The refusing queue is deleted after the test."""
    channel = collector.channel
    full = support.unique("relay_full_q")
    channel.queue_declare(full, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    channel.queue_bind(full, collector.exchange, "refused_here")
    channel.queue_unbind(collector.queue, collector.exchange, "#")
    channel.queue_bind(collector.queue, collector.exchange, "author")
    yield
    channel.queue_delete(full)


@pytest.fixture
def relays(tmp_path, exchange):
    """Return a function starting `python -m relay` processes; all are stopped after."""
    started = []

    def start(name, *extra, database=None, broker=support.BROKER_URL):
        process = support.RelayProcess(
            tmp_path, name, database or support.database_url(), exchange, *extra, broker=broker
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        if process.alive():
            try:
                process.terminate(timeout=15)
            except Exception:  # noqa: BLE001 - make sure it is gone whatever happened
                process.kill()
