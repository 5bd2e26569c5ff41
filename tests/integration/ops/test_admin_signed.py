"""Signed events in the admin: which key signed each, and replays that keep the signature."""

import pytest
from django.test.utils import override_settings
from django.urls import reverse

from cqrs_outbox.core import signing
from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = reverse("admin:cqrs_outbox_outboxevent_changelist")


@pytest.fixture
def signed_and_unsigned(tmp_path, settings):
    """One event signed with key 'orders-1', then one unsigned."""
    pem, public = signing.generate()
    path = tmp_path / "orders-1.pem"
    path.write_bytes(pem)
    master = {**settings.CQRS["master"], "signing_key": {"id": "orders-1", "file": str(path)}}
    with override_settings(CQRS={**settings.CQRS, "master": master}):
        models.Author.objects.create(name="Ann")
    models.Author.objects.create(name="Bob")
    return list(OutboxEvent.objects.order_by("id")), public


def test_list_and_detail__show_signed_with_the_key_id_or_unsigned(admin_client,
                                                                   signed_and_unsigned):
    (signed, unsigned), _ = signed_and_unsigned
    html = admin_client.get(LIST_URL).content.decode()
    assert "signed, key orders-1" in html and "unsigned" in html
    detail = reverse("admin:cqrs_outbox_outboxevent_change", args=[signed.pk])
    assert "signed, key orders-1" in admin_client.get(detail).content.decode()
    detail = reverse("admin:cqrs_outbox_outboxevent_change", args=[unsigned.pk])
    assert "signed, key" not in admin_client.get(detail).content.decode()


def test_replay__copies_keep_a_signature_that_still_verifies(operator_client,
                                                              signed_and_unsigned):
    (signed, unsigned), public = signed_and_unsigned
    response = operator_client.post(LIST_URL, {
        "action": "replay_events", "_selected_action": [signed.pk, unsigned.pk]}, follow=True)
    assert "2 event(s) queued to be published again" in response.content.decode()
    copy, unsigned_copy = OutboxEvent.objects.filter(pk__gt=unsigned.pk).order_by("id")
    verifier = signing.Verifier({"author": {"orders-1": signing.load_public(public, "t")}})
    assert copy.signature == signed.signature
    assert verifier.refusal("author", copy.payload.encode(), copy.signature) is None
    assert unsigned_copy.signature is None
