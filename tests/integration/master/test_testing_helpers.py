"""The helpers users unit-test their masters with see what the relay would publish."""

import pytest
from django.db import transaction

from cqrs_outbox.testing import capture_events
from tests.testproject.master import models

pytestmark = pytest.mark.django_db


def test_capture_events__sees_the_events_of_the_block_only():
    models.Author.objects.create(name="before")
    with capture_events() as events:
        author = models.Author.objects.create(name="Ann")
        author.name = "Bob"
        author.save()
        models.Silent.objects.create(name="not published")
    # The test runs in one transaction, so create and rename are one event.
    assert [(e.cqrs_id, e.signal_type, e.revision) for e in events] == [("author", "SAVE", 0)]
    assert events.bodies()[0]["instance_data"]["name"] == "Bob"
    assert len(events.of("author", "SAVE")) == 1


def test_capture_events__rolled_back_writes_are_absent():
    with capture_events() as events:
        with pytest.raises(RuntimeError), transaction.atomic():
            models.Author.objects.create(name="gone")
            raise RuntimeError
    assert list(events) == []
