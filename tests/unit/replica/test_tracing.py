"""Trace headers: taken from the active span at save, continued (or ignored) at apply."""

import sys

import pytest
from opentelemetry import trace

from cqrs_outbox import tracing
from tests.support import tracing as test_tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans():
    exporter = test_tracing.exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


def test_headers__are_the_active_spans_traceparent(spans):
    with test_tracing.tracer().start_as_current_span("save") as span:
        found = tracing.headers()
    context = span.get_span_context()
    assert list(found) == ["traceparent"]
    assert found["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


def test_headers__are_none_outside_a_span_or_without_opentelemetry(spans, monkeypatch):
    assert tracing.headers() is None
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    tracing._otel.cache_clear()
    try:
        with test_tracing.tracer().start_as_current_span("save"):
            assert tracing.headers() is None
    finally:
        monkeypatch.undo()
        tracing._otel.cache_clear()


def test_batch_span__continues_the_first_traced_event_and_links_each(spans):
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    with tracing.batch_span("q", [None, {"traceparent": PARENT, "tracestate": "k=v"},
                                  {"traceparent": other.encode()}]):
        pass
    [span] = spans.get_finished_spans()
    assert span.name == "q process" and span.kind == trace.SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert [f"{link.context.trace_id:032x}" for link in span.links] == [
        "0af7651916cd43dd8448eb211c80319c", "11111111111111111111111111111111"]
    assert span.links[0].context.trace_state.get("k") == "v"


@pytest.mark.parametrize("headers", [
    {"traceparent": "garbage"}, {"traceparent": 7}, {"traceparent": None}, "not a dict",
    {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
])
def test_batch_span__ignores_malformed_trace_headers(spans, headers):
    with tracing.batch_span("q", [headers]):
        pass
    [span] = spans.get_finished_spans()
    assert span.parent is None and list(span.links) == []
