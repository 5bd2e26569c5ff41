"""The "Sync selected via CQRS" and "Repair selected ... on replicas" actions of master
models' admin."""

import pytest
from django.contrib.auth.models import Permission, User

from cqrs_outbox.models import OutboxEvent
from tests.testproject.master import models

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.integration.ops.urls"),
]

LIST_URL = "/ops-admin/master/author/"


@pytest.fixture
def authors():
    created = [models.Author.objects.create(name=f"author {i}") for i in range(3)]
    OutboxEvent.objects.all().delete()
    return created


def _sync(client, authors, action="sync_items"):
    return client.post(
        LIST_URL,
        {"action": action, "_selected_action": [a.pk for a in authors], "index": 0},
        follow=True,
    )


def test_sync_action__writes_a_sync_event_per_selected_row(admin_client, authors, outbox_rows):
    page = admin_client.get(LIST_URL).content.decode()
    assert "Sync selected authors via CQRS" in page
    response = _sync(admin_client, authors[:2])
    assert "2 row(s) queued for sync via the outbox." in response.content.decode()
    rows = outbox_rows()
    assert [(r["signal_type"], r["instance_pk"]) for r in rows] == [
        ("SYNC", str(authors[0].pk)),
        ("SYNC", str(authors[1].pk)),
    ]
    assert {r["routing_key"] for r in rows} == {"author"}
    assert all("repair" not in r["body"] for r in rows)


def test_sync_action__needs_the_change_permission(client, authors):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_author"))
    client.force_login(viewer)
    assert "sync_items" not in client.get(LIST_URL).content.decode()
    _sync(client, authors)
    assert OutboxEvent.objects.count() == 0


def test_repair_action__writes_syncs_marked_as_repairs(admin_client, authors, outbox_rows):
    page = admin_client.get(LIST_URL).content.decode()
    assert "Repair selected authors on replicas" in page
    response = _sync(admin_client, authors[1:], action="repair_items")
    assert "2 row(s) queued for repair on replicas via the outbox." in \
        response.content.decode()
    rows = outbox_rows()
    assert [(r["signal_type"], r["instance_pk"], r["body"]["repair"]) for r in rows] == [
        ("SYNC", str(authors[1].pk), True),
        ("SYNC", str(authors[2].pk), True),
    ]
    assert rows[0]["body"]["instance_data"]["name"] == "author 1"


def test_repair_action__needs_the_change_permission(client, authors):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_author"))
    client.force_login(viewer)
    assert "repair_items" not in client.get(LIST_URL).content.decode()
    _sync(client, authors, action="repair_items")
    assert OutboxEvent.objects.count() == 0
