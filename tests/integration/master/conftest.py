import json

import pytest

from cqrs_outbox.models import OutboxEvent


def _events(using="default"):
    return [
        dict(e, body=json.loads(e["payload"]))
        for e in OutboxEvent.objects.using(using).order_by("id").values()
    ]


@pytest.fixture
def outbox_rows():
    """Return a function listing the outbox rows, oldest first, with their decoded body."""
    return _events
