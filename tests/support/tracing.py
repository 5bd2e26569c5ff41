"""One OpenTelemetry tracer provider for the whole test run, exporting to memory.

OpenTelemetry lets a process set its global provider once, so every test that looks
at spans shares this one and clears the exporter first.
"""

from __future__ import annotations

import functools

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@functools.cache
def exporter() -> InMemorySpanExporter:
    """Install the provider (once) and return its in-memory exporter."""
    found = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(found))
    trace.set_tracer_provider(provider)
    return found


def tracer() -> trace.Tracer:
    """Return a tracer of the test provider."""
    exporter()
    return trace.get_tracer("tests")
