"""Trace context across the hop: a save inside a span is continued by the replica's apply.

The master saves here, `python -m relay` publishes from a process of its own, and the
consumer applies in a thread of this process, so that one in-memory exporter holds the
spans of both ends. A django-cqrs replica, in a process of its own, still applies the
messages that carry the headers.
"""

import threading

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from opentelemetry import trace

from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.replica.consumer import Consumer
from tests.acceptance.replica import peers, support
from tests.support import tracing
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models as replica

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]



@pytest.fixture
def tracer():
    return tracing.tracer()


@pytest.fixture
def spans(tracer):
    exporter = tracing.exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def tap(broker, names):
    """A queue of the test's own that also receives every `author` event."""
    queue = support.unique("tap")
    broker.channel.queue_declare(queue, durable=True)
    broker.channel.queue_bind(queue, names.exchange, "author")
    yield queue
    broker.channel.queue_delete(queue)


def _consume_until(names, done):
    with override_settings(CQRS={**settings.CQRS, "exchange": names.exchange,
                                 "queue": names.queue}):
        consumer = Consumer(["author"])

        def run():
            try:
                consumer.run()
            finally:
                connections.close_all()  # this thread's own connections

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            wait_until(done, what="the replica to apply the event")
        finally:
            consumer.stop()
            thread.join(30)


def test_trace__a_save_inside_a_span_continues_in_the_replicas_apply(
        tracer, spans, broker, names, tap, worker_env, tmp_path):
    with tracer.start_as_current_span("checkout") as span:
        author = master.Author.objects.create(name="traced")
    trace_id = span.get_span_context().trace_id
    row = OutboxEvent.objects.get()
    assert row.traceparent.startswith(f"00-{trace_id:032x}-{span.get_span_context().span_id:016x}-")

    peers.publish_outbox(worker_env["CQRS_TEST_DB_NAME"], names.exchange, tmp_path / "relay.log")
    method, properties, _ = broker.channel.basic_get(tap, auto_ack=True)
    assert method is not None
    assert properties.headers == {"traceparent": row.traceparent}

    _consume_until(names, lambda: replica.AuthorRef.objects.filter(pk=author.pk).exists())
    [applied] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert applied.name == f"{names.queue} process"
    assert applied.context.trace_id == trace_id
    assert applied.parent.span_id == span.get_span_context().span_id
    assert [link.context.span_id for link in applied.links] == [span.get_span_context().span_id]


def test_trace__a_save_outside_any_span_carries_no_trace_headers(
        tracer, spans, broker, names, tap, worker_env, tmp_path):
    author = master.Author.objects.create(name="untraced")
    assert OutboxEvent.objects.get().traceparent is None
    peers.publish_outbox(worker_env["CQRS_TEST_DB_NAME"], names.exchange, tmp_path / "relay.log")
    method, properties, _ = broker.channel.basic_get(tap, auto_ack=True)
    assert method is not None and properties.headers is None
    _consume_until(names, lambda: replica.AuthorRef.objects.filter(pk=author.pk).exists())
    [applied] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert applied.parent is None and list(applied.links) == []


def test_trace__a_django_cqrs_replica_applies_events_that_carry_trace_headers(
        tracer, broker, names, tap, worker_env, tmp_path):
    with tracer.start_as_current_span("checkout"):
        author = master.Author.objects.create(name="traced")
    with peers.replica_worker(names, worker_env["CQRS_TEST_DB_NAME"], tmp_path) as db:
        _, properties, _ = broker.channel.basic_get(tap, auto_ack=True)
        assert "traceparent" in properties.headers
        wait_until(lambda: peers.rows(db, "SELECT id, name FROM peer_replica_authorref")
                   == [(author.pk, "traced")], what="the django-cqrs replica")
        assert broker.count(names.dead_letter_queue) == 0
