"""The forms wire.py writes and reads besides the envelope's keys: the loose ISO-8601 texts
Django reads, `expires` offsets, and the values a new envelope goes out with.

A slip in any of these moves a moment by hours or changes a body a peer receives, while
the tests built on well-formed UTC bodies still pass.
"""

import datetime
import json
import uuid

import pytest

from cqrs_outbox.core import wire

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

# Texts Django's parse_datetime reads and `datetime.fromisoformat` does not (a one-digit
# month takes them off its path on every Python), each beside the strict text naming the
# same wall time and offset.
LOOSE_FORMS = [
    ("2026-1-02T03:04:05Z", "2026-01-02T03:04:05+00:00"),
    ("2026-1-02T03:04:05+05", "2026-01-02T03:04:05+05:00"),
    ("2026-1-02T03:04:05-11", "2026-01-02T03:04:05-11:00"),
    ("2026-1-02T03:04:05+1030", "2026-01-02T03:04:05+10:30"),
    ("2026-1-02T03:04:05-09:45", "2026-01-02T03:04:05-09:45"),
    ("2026-1-02T03:04:05,5", "2026-01-02T03:04:05.500000"),
    ("2026-1-02T03:04:05.123456789012+00:30", "2026-01-02T03:04:05.123456+00:30"),
    ("2026-1-02 03:04", "2026-01-02T03:04:00"),
]


@pytest.mark.parametrize(("loose", "strict"), LOOSE_FORMS)
def test_parse_datetime__a_loose_form_names_the_wall_time_and_offset_of_its_strict_form(
        loose, strict):
    """Each offset form (Z, +HH, -HH, +HHMM, -HH:MM) gives its own sign, hours and minutes,
    a short fraction is read as tenths, a long one cut to microseconds; no offset stays
    naive."""
    with pytest.raises(ValueError):
        datetime.datetime.fromisoformat(loose)  # so this case takes wire's own parser
    moment = wire.parse_datetime(loose)
    expected = datetime.datetime.fromisoformat(strict)
    assert (moment.replace(tzinfo=None), moment.utcoffset()) == (
        expected.replace(tzinfo=None), expected.utcoffset())


def test_expires_at__an_offset_names_its_own_instant_and_only_a_naive_text_means_utc():
    """`expires` 14:00 at +02:00 is 12:00 UTC: the message expires then, not two hours
    later, and a naive 12:00 is the same instant."""
    aware = wire.expires_at("2030-06-01T14:00:00+02:00")
    assert aware == NOW
    assert aware.utcoffset() == datetime.timedelta(hours=2)
    assert wire.expires_at("2030-06-01T12:00:00") == NOW
    envelope = wire.Envelope(signal_type=wire.SIGNAL_SAVE, cqrs_id="a", instance_data={},
                             instance_pk=1, expires="2030-06-01T14:00:00+02:00")
    assert wire.is_expired(envelope, now=NOW) is True
    assert wire.is_expired(envelope, now=NOW - datetime.timedelta(seconds=1)) is False


def test_envelope__a_new_event_goes_out_with_retries_zero_and_the_optional_keys_null():
    """A master builds its envelopes without `retries`, `expires`, `meta` and the rest: the
    body then carries every key django-cqrs sends, retries 0 and the others null."""
    envelope = wire.Envelope(signal_type=wire.SIGNAL_SAVE, cqrs_id="author",
                             instance_data={"id": 1}, instance_pk=1)
    assert json.loads(envelope.to_json()) == {
        "signal_type": "SAVE", "cqrs_id": "author", "instance_data": {"id": 1},
        "previous_data": None, "instance_pk": 1, "correlation_id": None, "retries": 0,
        "expires": None, "meta": None,
    }


KEY = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(("value", "sent"), [
    (7, 7), ("k7", "k7"), (KEY, str(KEY)), (None, None), (1.5, 1.5), (True, True),
])
def test_envelope__a_pk_or_correlation_id_json_has_no_form_for_goes_as_its_text(value, sent):
    """A UUID (or any value JSON lacks) is sent as its text; JSON's own values, null
    included, go as they are."""
    envelope = wire.Envelope(signal_type=wire.SIGNAL_SAVE, cqrs_id="a", instance_data={},
                             instance_pk=value, correlation_id=value)
    body = envelope.to_dict()
    assert (body["instance_pk"], body["correlation_id"]) == (sent, sent)


def test_envelope__to_json_is_the_compact_utf8_body_that_decodes_to_the_same_envelope():
    """What a master publishes is compact JSON with text as UTF-8 (not \\u escapes), and a
    replica reads it back to the envelope it came from."""
    envelope = wire.Envelope(
        signal_type=wire.SIGNAL_SAVE, cqrs_id="author", instance_data={"name": "Zoë"},
        instance_pk="k1", previous_data={"name": "Zoe"}, correlation_id="c1", retries=2,
        expires="2030-06-01T12:00:00+00:00", meta={"by": "ü"})
    text = envelope.to_json()
    assert json.loads(text) == envelope.to_dict()
    assert text == json.dumps(envelope.to_dict(), separators=(",", ":"), ensure_ascii=False)
    assert "Zoë" in text
    assert wire.decode(text.encode()) == envelope


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_decode__keeps_the_retries_counter_the_body_carries(retries):
    """A body retried three times reads back as retried three times, so its next retry
    counts on from there."""
    body = {"signal_type": "SAVE", "cqrs_id": "a", "instance_pk": 1, "instance_data": {},
            "retries": retries}
    assert wire.decode(json.dumps(body).encode()).retries == retries
