"""What the relay reads from the store: the headers a pending event carries, and reads
asked for nothing."""

import datetime

import pytest

from cqrs_outbox import store
from cqrs_outbox.core import contract, signing

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)


def _pending(**extra):
    return store.Pending(id=1, partition=0, routing_key="author", payload="{}", attempts=0,
                         available_at=NOW, **extra)


@pytest.mark.parametrize(("extra", "headers"), [
    ({}, None),
    ({"traceparent": TRACE}, {"traceparent": TRACE}),
    ({"traceparent": TRACE, "tracestate": "vendor=a"},
     {"traceparent": TRACE, "tracestate": "vendor=a"}),
    ({"traceparent": TRACE, "tracestate": ""}, {"traceparent": TRACE}),
    # A trace state means nothing without the parent it belongs to.
    ({"tracestate": "vendor=a"}, None),
    ({"signature": "v1;kid=k1;sig=AAAA"}, {signing.HEADER: "v1;kid=k1;sig=AAAA"}),
    ({"traceparent": TRACE, "signature": "v1;kid=k1;sig=AAAA"},
     {"traceparent": TRACE, signing.HEADER: "v1;kid=k1;sig=AAAA"}),
])
def test_pending_headers__carry_the_trace_context_and_signature_it_has(extra, headers):
    """An event is published with exactly the headers its row holds: a signed event's
    signature (without it, a replica that requires signatures refuses the event), its
    trace context, and no headers at all (None, not an empty table) when it has none."""
    assert _pending(**extra).headers() == headers


def test_read_pending__for_no_partition_or_no_room_reads_nothing(outbox):
    """A relay that holds no partition, or has no room left in its batch, gets no rows."""
    outbox.add("author", 1)
    partition = contract.partition_for("author", 1)
    assert store.read_pending(outbox.db, [], 10) == []
    assert store.read_pending(outbox.db, [(partition, 0)], 0) == []
    assert [p.id for p in store.read_pending(outbox.db, [(partition, 0)], 1)] == [1]
