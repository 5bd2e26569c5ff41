"""W3C trace context across the hop: taken at save, carried in AMQP headers, continued
on the replica.

Everything here is a no-op unless OpenTelemetry is installed (the `otel` extra) and,
at save, a span is active. The master stores `traceparent` and `tracestate` in the
event's outbox row; the relay sends them as message headers; the replica's consumer
opens one span per batch, a child of the first traced event's context and linked to
every traced event's, so each save's trace leads to the apply that carried it.
django-cqrs peers ignore the headers.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from typing import Any

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACER = "cqrs_outbox"


@functools.cache
def _otel() -> Any:
    # Cached: a failed import is looked for on sys.path again each time, on every save.
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation import tracecontext
    except ImportError:
        return None
    return trace, tracecontext.TraceContextTextMapPropagator()


def headers() -> dict[str, str] | None:
    """Return the active span's `traceparent` (and `tracestate`) headers, or None."""
    otel = _otel()
    if otel is None:
        return None
    trace, propagator = otel
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    return carrier or None


def _context(message_headers: Any, propagator: Any, trace: Any) -> Any:
    if not isinstance(message_headers, dict):
        return None
    parent = message_headers.get(TRACEPARENT)
    if not isinstance(parent, (str, bytes)):
        return None
    carrier = {TRACEPARENT: parent if isinstance(parent, str) else parent.decode()}
    state = message_headers.get(TRACESTATE)
    if isinstance(state, (str, bytes)):
        carrier[TRACESTATE] = state if isinstance(state, str) else state.decode()
    context = propagator.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    return (context, span_context) if span_context.is_valid else None


@contextlib.contextmanager
def batch_span(queue: str, message_headers: Iterable[Any]) -> Iterator[None]:
    """Apply a batch inside a consumer span that continues its events' traces."""
    otel = _otel()
    if otel is None:
        yield
        return
    trace, propagator = otel
    found = [c for c in (_context(h, propagator, trace) for h in message_headers) if c]
    links = [trace.Link(span_context) for _, span_context in found]
    tracer = trace.get_tracer(TRACER)
    with tracer.start_as_current_span(
        f"{queue} process", context=found[0][0] if found else None,
        kind=trace.SpanKind.CONSUMER, links=links,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": queue,
                    "messaging.operation.type": "process"},
    ):
        yield
