"""The admin pages never show the broker password, whatever shape the URL has."""

import pytest
from django.urls import reverse

from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "Sup3rSecret"


@pytest.mark.parametrize("password", [f"pa#{SECRET}", f"pa/{SECRET}", f"pa?{SECRET}"])
def test_admin_pages__never_show_the_broker_password(admin_client, settings, password):
    settings.CQRS = {**settings.CQRS, "url": f"amqp://guest:{password}@127.0.0.1:5672/%2F"}
    models.Author.objects.create(name="Ann")
    event = OutboxEvent.objects.get()
    pages = [reverse("admin:cqrs_outbox_outboxevent_changelist"),
             reverse("admin:cqrs_outbox_outboxevent_change", args=[event.pk])]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
