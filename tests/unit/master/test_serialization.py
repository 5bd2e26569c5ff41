"""Serialising master instances in memory: field forms, CQRS_FIELDS, tracked F() fields."""

import datetime
import uuid

from django.db.models import F

from cqrs_outbox import conf
from cqrs_outbox.master import serialization, tracker
from tests.testproject.master import models


def _loaded(model, **values):
    # An instance as read from the database: post_init took the tracker's snapshot.
    obj = model(**values)
    obj._state.adding = False
    return obj


def test_field_data__dates_and_uuids_as_text_like_django_cqrs():
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    obj = _loaded(models.AllFields, id=3, date_field=datetime.date(2026, 1, 2),
                  datetime_field=moment, uuid_field=uuid.UUID(int=7), author_id=9)
    obj.cqrs_updated = moment
    data = serialization.field_data(obj)
    assert data["date_field"] == "2026-01-02"
    assert data["datetime_field"] == str(moment)
    assert data["uuid_field"] == str(uuid.UUID(int=7))
    assert data["author"] == 9
    assert data["cqrs_updated"] == str(moment)


def test_field_data__cqrs_fields_limit_the_keys():
    obj = _loaded(models.Partial, id=1, name="n", secret="s")
    assert set(serialization.field_data(obj)) == {"id", "name", "cqrs_revision", "cqrs_updated"}


def test_expression_fields__names_only_fields_holding_an_expression():
    obj = _loaded(models.Counter, id=1, name="c", hits=2)
    obj.hits = F("hits") + 1
    assert serialization.expression_fields(obj) == ["hits"]


def test_tracker_capture__f_expression_counts_as_changed_with_its_old_value():
    obj = _loaded(models.Counter, id=1, name="c", hits=2, cqrs_revision=4)
    obj.hits = F("hits") + 1
    obj.cqrs_revision = F("cqrs_revision") + 1
    assert tracker.capture(obj, first_in_transaction=True) == {"hits": 2, "cqrs_revision": 4}


def test_expires_at__one_value_per_second_and_ttl(settings):
    first = serialization.expires_at(conf.get())
    again = serialization.expires_at(conf.get())
    assert first == again
    parsed = datetime.datetime.fromisoformat(first)
    now = datetime.datetime.now(datetime.timezone.utc)
    ttl = settings.CQRS["master"]["CQRS_MESSAGE_TTL"]
    assert abs((parsed - now).total_seconds() - ttl) < 2
