"""The outbox keeps bodies of 16 MiB and more byte for byte, four-byte characters included."""

import pytest
from django.db import connections, transaction

from cqrs_outbox import store
from cqrs_outbox.core import contract, wire
from cqrs_outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


def test_payload_of_16_mib__read_back_exactly():
    # An emoji is four bytes in UTF-8: MySQL's three-byte `utf8` would refuse or mangle it.
    filler = "\U0001f680é\"\\ x" * (16 * MIB // 8 + 1)
    payload = wire.dumps({"signal_type": "SAVE", "instance_data": {"blob": filler}})
    assert len(payload.encode()) > 16 * MIB
    event = contract.NewEvent(
        cqrs_id="big", instance_pk="1", signal_type="SAVE", revision=0,
        partition=contract.partition_for("big", 1), routing_key="big", payload=payload,
    )
    with transaction.atomic():
        [event_id] = store.insert_events(store.wrap(connections["default"]), [event])
    stored = OutboxEvent.objects.get(pk=event_id).payload
    assert len(stored) == len(payload)
    assert stored == payload
