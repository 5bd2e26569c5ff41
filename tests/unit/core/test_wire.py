"""Incoming bodies are validated key by key; every problem names the key."""

import datetime
import json

import pytest

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import BadMessage
from tests.integration.replica import events as ev


def test_decode__reads_a_full_django_cqrs_body():
    body = ev.save("author", 1, 2, name="a")
    envelope = wire.decode(json.dumps({**body, "future_key": 1}).encode())
    assert (envelope.signal_type, envelope.cqrs_id, envelope.instance_pk) == ("SAVE", "author", 1)
    assert wire.revision(envelope.instance_data) == 2
    assert envelope.extra == {"future_key": 1}


def test_decode__defaults_the_keys_django_cqrs_may_leave_out():
    body = {"signal_type": "SYNC", "cqrs_id": "a", "instance_pk": "x", "instance_data": {}}
    envelope = wire.validate(body)
    assert (envelope.retries, envelope.expires, envelope.meta, envelope.previous_data) == (
        0, None, None, None)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\xff\xfe", "not JSON"),
        (b"{", "not JSON"),
        (b'"text"', "JSON object, got a string"),
        (b"null", "JSON object, got null"),
    ],
)
def test_decode__rejects_what_is_not_a_json_object(raw, message):
    with pytest.raises(BadMessage, match=message):
        wire.decode(raw)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"signal_type": None}, "signal_type must be one of"),
        ({"signal_type": "UPSERT"}, "signal_type must be one of"),
        ({"cqrs_id": 5}, "cqrs_id must be a string, got a number"),
        ({"cqrs_id": ""}, "cqrs_id must not be empty"),
        ({"instance_data": []}, "instance_data must be an object, got an array"),
        ({"instance_pk": {"a": 1}}, "instance_pk must be a string or an integer"),
        ({"previous_data": "x"}, "previous_data must be an object"),
        ({"retries": -1}, "retries must be a non-negative integer"),
        ({"retries": True}, "retries must be a non-negative integer"),
        ({"expires": "tomorrow"}, "expires must be an ISO-8601 datetime"),
        ({"expires": 5}, "expires must be a string"),
    ],
)
def test_validate__names_the_key_with_the_wrong_type(change, message):
    with pytest.raises(BadMessage, match=message):
        wire.validate({**ev.save("author", 1, 0, name="a"), **change})


@pytest.mark.parametrize("meta", [[1, "a"], "text", 3, -0.5, False, None, {"a": {"b": [1]}}])
def test_decode__takes_meta_of_any_json_kind(meta):
    """django-cqrs's consumer reads `meta` as it comes and hands it to the hooks unchanged."""
    body = {**ev.save("author", 1, 0, name="a"), "meta": meta}
    assert wire.decode(json.dumps(body).encode()).meta == meta


def test_decode__bounds_meta_by_the_body_limits():
    """A meta nested too deep or too large is refused like any other part of the body."""
    deep = {**ev.save("author", 1, 0, name="a"), "meta": json.loads("[" * 70 + "]" * 70)}
    with pytest.raises(BadMessage, match="deeper than the limit of 64 levels"):
        wire.decode(json.dumps(deep).encode())
    big = json.dumps({**ev.save("author", 1, 0, name="a"), "meta": "x" * 2000}).encode()
    with pytest.raises(BadMessage, match="over the limit of 1000 bytes"):
        wire.decode(big, max_size=1000)


@pytest.mark.parametrize("opener", ["[", "{\"a\": "])
def test_decode__counts_depth_not_brackets(opener):
    """Many brackets side by side are shallow; the same number nested is refused."""
    closer = "]" if opener == "[" else "}"
    wide = "[" + ", ".join([opener + "1" + closer] * 10) + "]"
    body = {**ev.save("author", 1, 0, name="a"), "meta": json.loads(wide)}
    assert wire.decode(json.dumps(body).encode(), max_depth=3).meta == json.loads(wide)
    deep = {**body, "meta": json.loads(opener * 3 + "1" + closer * 3)}
    with pytest.raises(BadMessage, match="deeper than the limit of 3 levels"):
        wire.decode(json.dumps(deep).encode(), max_depth=3)
    fits = {**body, "meta": json.loads(opener * 2 + "1" + closer * 2)}
    assert wire.decode(json.dumps(fits).encode(), max_depth=3).meta == fits["meta"]


def test_decode__keeps_unknown_keys_in_their_order_and_only_them():
    body = {"z_last": 1, **ev.save("author", 1, 0, name="a"), "a_first": [2]}
    envelope = wire.decode(json.dumps(body).encode())
    assert list(envelope.extra.items()) == [("z_last", 1), ("a_first", [2])]
    assert wire.decode(json.dumps(ev.save("author", 1, 0, name="a")).encode()).extra == {}


@pytest.mark.parametrize("key", wire.REQUIRED_KEYS)
def test_validate__names_a_missing_key(key):
    body = ev.save("author", 1, 0, name="a")
    del body[key]
    with pytest.raises(BadMessage, match=f"'{key}' is missing"):
        wire.validate(body)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"cqrs_updated": "x"}, "cqrs_revision is missing"),
        ({"cqrs_revision": "1", "cqrs_updated": "x"}, "must be an integer >= 0, got '1'"),
        ({"cqrs_revision": -1, "cqrs_updated": "x"}, "must be an integer >= 0, got -1"),
        ({"cqrs_revision": 1.0, "cqrs_updated": "x"}, "must be an integer"),
        ({"cqrs_revision": False, "cqrs_updated": "x"}, "must be an integer"),
        ({"cqrs_revision": 1}, "cqrs_updated is missing"),
    ],
)
def test_revision__must_be_an_integer(data, message):
    with pytest.raises(BadMessage, match=message):
        wire.revision(data)


def test_expiry__naive_means_utc_and_past_is_expired():
    envelope = wire.validate({**ev.save("a", 1, 0), "expires": "2000-01-01T00:00:00"})
    assert wire.is_expired(envelope)
    assert not wire.is_expired(wire.validate(ev.save("a", 1, 0)))


def test_with_retries__keeps_every_key_and_raises_the_counter():
    body = {**ev.save("author", 1, 0, name="a"), "future_key": "kept"}
    again = json.loads(wire.with_retries(wire.validate(body), 3))
    assert again == {**body, "retries": 3}
    assert set(wire.ENVELOPE_KEYS) <= set(again)


def test_reset_for_retry__zeroes_retries_and_renews_expires():
    body = {**ev.save("a", 1, 0), "retries": 5, "expires": "2000-01-01T00:00:00+00:00"}
    fresh = json.loads(wire.reset_for_retry(json.dumps(body).encode(), 60))
    assert fresh["retries"] == 0
    assert not wire.is_expired(wire.validate(fresh))
    assert wire.reset_for_retry(b"junk", 60) == b"junk"


def test_delete_data__names_the_row_and_carries_the_revision_after_its_own():
    updated = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)
    data = wire.delete_data(7, 3, updated)
    assert data == {"id": 7, "cqrs_revision": 4, "cqrs_updated": str(updated)}
    assert list(data) == ["id", "cqrs_revision", "cqrs_updated"]  # the order on the wire
    assert wire.delete_data("k", 0, updated, {"why": "gone"})["custom"] == {"why": "gone"}
    assert "custom" not in wire.delete_data("k", 0, updated, {})


def test_expires_after__is_whole_seconds_of_iso_text_that_reads_back():
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=datetime.timezone.utc)
    text = wire.expires_after(now, 60)
    assert text == "2026-01-02T03:05:05+00:00"
    assert wire.expires_at(text) == now.replace(microsecond=0) + datetime.timedelta(seconds=60)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-02T03:04:05Z", (2026, 1, 2, 3, 4, 5, 0, 0)),
    ("2026-1-2 3:4", (2026, 1, 2, 3, 4, 0, 0, None)),
    ("2026-01-02T03:04:05,5-0130", (2026, 1, 2, 3, 4, 5, 500000, -90)),
    ("2026-01-02T03:04:05.1234567+02", (2026, 1, 2, 3, 4, 5, 123456, 120)),
])
def test_parse_datetime__reads_the_forms_django_reads(text, expected):
    moment = wire.parse_datetime(text)
    offset = moment.utcoffset()
    minutes = None if offset is None else int(offset.total_seconds() // 60)
    assert (*moment.timetuple()[:6], moment.microsecond, minutes) == expected


def test_parse_datetime__none_for_other_text_and_an_error_for_impossible_dates():
    assert wire.parse_datetime("tomorrow") is None
    with pytest.raises(ValueError):
        wire.parse_datetime("2026-02-30 10:00")


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": "\xff\xfe"}',
    b"[1, 2]",
    b'{"x": "' + b"a" * (wire.MAX_BODY_SIZE + 1) + b'"}',
])
def test_reset_for_retry__any_body_that_is_not_a_json_object_comes_back_unchanged(body):
    assert wire.json_object(body) is None
    assert wire.reset_for_retry(body, 60) == body
    assert not wire.has_expiry(body)


def test_dumps__values_json_lacks_go_as_text_and_decimals_as_numbers():
    """A date, a UUID or any other value JSON has no form for is sent as its text, never
    as null; a Decimal is sent as a number, as django-cqrs sends them."""
    import decimal
    import uuid

    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    body = {"d": datetime.date(2030, 6, 1), "u": key, "n": decimal.Decimal("1.50")}
    assert wire.dumps(body) == ('{"d":"2030-06-01","u":"12345678-1234-5678-1234-567812345678",'
                                '"n":1.5}')
