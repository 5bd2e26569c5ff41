"""A save goes through with a CQRS_MESSAGE_TTL django-cqrs tolerates, using the default."""

import datetime

import pytest
from django.utils import timezone

from cqrs_outbox import conf
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("ttl", [0, -5, 2.5, {"seconds": 10}])
def test_save__bad_message_ttl_writes_the_event_with_the_default_ttl(settings, outbox_rows, ttl):
    settings.CQRS = {**settings.CQRS, "master": {"CQRS_MESSAGE_TTL": ttl}}
    before = timezone.now()
    models.Author.objects.create(name="a")
    [row] = outbox_rows()
    expires = datetime.datetime.fromisoformat(row["body"]["expires"])
    default = datetime.timedelta(seconds=conf.DEFAULT_MESSAGE_TTL)
    assert before + default - datetime.timedelta(seconds=1) <= expires
    assert expires <= timezone.now() + default
