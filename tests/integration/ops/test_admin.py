"""The outbox in Django admin: list, filters, search, detail, replay and retry."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cqrs_outbox.core import contract
from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.ops import admin
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = reverse("admin:cqrs_outbox_outboxevent_changelist")


def _detail_url(event):
    return reverse("admin:cqrs_outbox_outboxevent_change", args=[event.pk])


@pytest.fixture
def events():
    """Three authors saved (one twice, one deleted); the second event failed."""
    ann = models.Author.objects.create(name="Ann")
    bob = models.Author.objects.create(name="Bob")
    ann.name = "Ann B."
    ann.save()
    bob.delete()
    models.Publisher.objects.create(name="Pub")
    rows = list(OutboxEvent.objects.order_by("id"))
    OutboxEvent.objects.filter(pk=rows[1].pk).update(
        status=contract.STATUS_FAILED, attempts=10, last_error="NOT_FOUND - no exchange"
    )
    OutboxEvent.objects.filter(pk=rows[2].pk).update(
        status=contract.STATUS_PUBLISHED, published_at=timezone.now(), correlation_id="corr-42"
    )
    return list(OutboxEvent.objects.order_by("id"))


def _listed_ids(response):
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def test_list__shows_the_columns_and_the_summary(admin_client, events):
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    html = response.content.decode()
    for header in (
        "Cqrs id",
        "Instance pk",
        "Signal type",
        "Revision",
        "Status",
        "Attempts",
        "Created at",
        "Published at",
        "Last error",
    ):
        assert header in html
    assert _listed_ids(response) == [e.pk for e in events]
    summary = response.context["cqrs_summary"]
    assert (summary["pending"], summary["failed"]) == (3, 1)
    assert 'id="cqrs-summary"' in html
    assert "NOT_FOUND - no exchange" in html
    assert "5 outbox events" in html


def test_list__filters_by_status_cqrs_id_signal_type_and_date(admin_client, events):
    failed = admin_client.get(LIST_URL, {"status": "failed"})
    assert _listed_ids(failed) == [events[1].pk]
    publisher = admin_client.get(LIST_URL, {"cqrs_id": "publisher"})
    assert _listed_ids(publisher) == [events[4].pk]
    deletes = admin_client.get(LIST_URL, {"signal_type": "DELETE"})
    assert [e.signal_type for e in deletes.context["cl"].result_list] == ["DELETE"]
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = today + datetime.timedelta(days=1)
    dated = admin_client.get(
        LIST_URL, {"created_at__gte": str(today), "created_at__lt": str(tomorrow)}
    )
    assert len(_listed_ids(dated)) == 5
    old = admin_client.get(LIST_URL, {"created_at__lt": str(today - datetime.timedelta(days=30))})
    assert _listed_ids(old) == []


def test_list__cqrs_id_choices_come_from_the_registry_without_scanning(admin_client, events):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(LIST_URL)
    html = response.content.decode()
    assert "?cqrs_id=all_fields" in html  # registered, though it has no events
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]


def test_search__by_instance_pk_correlation_id_and_cqrs_id_pk(admin_client, events):
    ann_pk = events[0].instance_pk
    by_pk = admin_client.get(LIST_URL, {"q": ann_pk})
    assert {e.instance_pk for e in by_pk.context["cl"].result_list} == {ann_pk}
    assert len(_listed_ids(by_pk)) >= 2  # Ann's two saves (and the publisher if its pk matches)
    by_corr = admin_client.get(LIST_URL, {"q": "corr-42"})
    assert _listed_ids(by_corr) == [events[2].pk]
    assert "1 matching" in by_corr.content.decode()
    by_both = admin_client.get(LIST_URL, {"q": f"publisher:{events[4].instance_pk}"})
    assert events[4].pk in _listed_ids(by_both)
    nothing = admin_client.get(LIST_URL, {"q": "no-such-thing"})
    assert _listed_ids(nothing) == []


def test_detail__shows_the_payload_as_indented_json_and_no_form(admin_client, events):
    response = admin_client.get(_detail_url(events[0]))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<pre class="cqrs-payload">{\n  &quot;signal_type&quot;: &quot;SAVE&quot;,' in html
    assert "&quot;name&quot;: &quot;Ann&quot;" in html
    assert 'name="_save"' not in html
    assert "<textarea" not in html


def test_no_add_change_or_delete__even_for_a_superuser(admin_client, events):
    event = events[0]
    assert admin_client.get(reverse("admin:cqrs_outbox_outboxevent_add")).status_code == 403
    response = admin_client.post(_detail_url(event), {"status": "published", "payload": "{}"})
    assert response.status_code == 403
    delete_url = reverse("admin:cqrs_outbox_outboxevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    list_html = admin_client.get(LIST_URL).content.decode()
    assert "delete_selected" not in list_html
    assert OutboxEvent.objects.get(pk=event.pk).payload == event.payload


def _act(client, action, events):
    return client.post(
        LIST_URL,
        {"action": action, "_selected_action": [e.pk for e in events], "index": 0},
        follow=True,
    )


def test_replay__appends_copies_in_the_original_order(operator_client, events):
    chosen = [events[2], events[0], events[4]]  # selection order must not matter
    response = _act(operator_client, "replay_events", chosen)
    assert "3 event(s) queued to be published again" in response.content.decode()
    copies = list(OutboxEvent.objects.filter(pk__gt=events[-1].pk).order_by("id"))
    originals = sorted(chosen, key=lambda e: e.pk)
    assert [c.payload for c in copies] == [o.payload for o in originals]
    assert [c.routing_key for c in copies] == [o.routing_key for o in originals]
    assert {c.status for c in copies} == {contract.STATUS_PENDING}


def test_replay__refused_without_the_replay_permission(viewer_client, events):
    page = viewer_client.get(LIST_URL).content.decode()
    assert "replay_events" not in page and "retry_failed" not in page
    response = _act(viewer_client, "replay_events", events)
    assert "queued to be published again" not in response.content.decode()
    assert OutboxEvent.objects.count() == len(events)


def test_retry_failed__makes_failed_events_pending_and_leaves_the_rest(operator_client, events):
    response = _act(operator_client, "retry_failed", events[:3])
    html = response.content.decode()
    assert "1 failed event(s) made pending again." in html
    assert "2 selected event(s) had not failed" in html
    retried = OutboxEvent.objects.get(pk=events[1].pk)
    assert (retried.status, retried.attempts, retried.last_error) == ("pending", 0, "")
    assert OutboxEvent.objects.get(pk=events[2].pk).status == "published"


def test_retry_failed__refused_without_the_replay_permission(viewer_client, events):
    _act(viewer_client, "retry_failed", [events[1]])
    assert OutboxEvent.objects.get(pk=events[1].pk).status == "failed"


def test_list__viewer_may_open_list_and_detail(viewer_client, events):
    assert viewer_client.get(LIST_URL).status_code == 200
    assert viewer_client.get(_detail_url(events[0])).status_code == 200


@pytest.mark.postgres
@pytest.mark.mysql
def test_list__estimates_the_count_of_a_large_outbox(admin_client, events, monkeypatch):
    monkeypatch.setattr(admin, "EXACT_COUNT_LIMIT", 3)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(LIST_URL)
    html = response.content.decode()
    assert "about " in html and "outbox events" in html
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # Counts of pending, failed and returned rows run on their partial indexes.
    table_counts = [sql for sql in counts if "LIMIT" not in sql.upper() and "status" not in sql
                    and "returned_at IS NOT NULL" not in sql]
    assert table_counts == []
    filtered = admin_client.get(LIST_URL, {"status": "failed"})
    assert "about" not in filtered.content.decode().split('class="paginator"')[1]


@pytest.mark.mysql
def test_mysql_estimates__come_from_statistics_and_explain_without_counting(events):


    if connection.vendor != "mysql":
        pytest.skip("the information_schema estimate is MySQL's")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE TABLE cqrs_outbox_event")
        cursor.fetchall()
    everything = OutboxEvent.objects.all()
    with CaptureQueriesContext(connection) as queries:
        whole = admin.estimated_rows(everything)
        pending = admin.estimated_rows(everything.filter(status="pending"))
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    # InnoDB samples pages, so an estimate is near the truth, not equal to it.
    assert 0 < whole <= 10 * len(events)
    assert 0 < pending <= 10 * len(events)


def test_returned__filter_lists_them_and_the_summary_counts_them_per_key(admin_client, events):
    returned = [events[0], events[4]]
    OutboxEvent.objects.filter(pk__in=[e.pk for e in returned]).update(
        status=contract.STATUS_PUBLISHED, published_at=timezone.now(),
        returned_at=timezone.now(), last_error="returned by the broker: 312 NO_ROUTE",
    )
    page = admin_client.get(LIST_URL)
    summary = page.context["cqrs_summary"]
    assert (summary["returned"], summary["returned_keys"]) == (2, "author, publisher")
    assert "returned (unroutable): author, publisher" in page.content.decode()
    filtered = admin_client.get(LIST_URL, {"returned": "unroutable"})
    assert _listed_ids(filtered) == sorted(e.pk for e in returned)
    assert _listed_ids(admin_client.get(LIST_URL, {"status": "published"})) == sorted(
        [events[2].pk] + [e.pk for e in returned]
    )


def test_replay__of_returned_events_clears_their_mark(operator_client, events):
    OutboxEvent.objects.filter(pk=events[0].pk).update(
        status=contract.STATUS_PUBLISHED, returned_at=timezone.now()
    )
    response = _act(operator_client, "replay_events", [events[0], events[2]])
    assert "2 event(s) queued to be published again" in response.content.decode()
    assert not OutboxEvent.objects.filter(returned_at__isnull=False).exists()
    copies = OutboxEvent.objects.filter(pk__gt=events[-1].pk)
    assert [(c.status, c.returned_at) for c in copies] == [(contract.STATUS_PENDING, None)] * 2
