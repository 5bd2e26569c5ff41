"""Every limit of the message body, exactly at it and one past it, and the retry helpers.

A limit that moves by one byte or one level would let a body through that the settings
promise to refuse (or refuse one they promise to take), so each is pinned on both sides.
"""

import datetime
import json

import pytest

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import BadMessage
from tests.integration.replica import events as ev

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def _body_of_size(size: int) -> bytes:
    """Return a valid SAVE body exactly `size` bytes long (padding in a text field)."""
    bare = json.dumps(ev.save("author", 1, 0, name="")).encode()
    padded = json.dumps(ev.save("author", 1, 0, name="x" * (size - len(bare)))).encode()
    assert len(padded) == size
    return padded


def _nested(levels: int) -> object:
    """Return `levels` arrays nested in one another (one level is `[]`)."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_decode__takes_a_body_of_exactly_max_size_bytes_and_refuses_one_byte_more():
    """The size limit is inclusive: max_size bytes pass, max_size + 1 are refused unread."""
    at = _body_of_size(500)
    assert wire.decode(at, max_size=500).instance_pk == 1
    with pytest.raises(BadMessage, match="body is 501 bytes, over the limit of 500 bytes"):
        wire.decode(_body_of_size(501), max_size=500)


def test_decode__default_size_limit_is_sixteen_mebibytes():
    """The default max_body_size is 16 MiB, at the byte."""
    assert wire.MAX_BODY_SIZE == 16 * 1024 * 1024
    assert wire.decode(_body_of_size(wire.MAX_BODY_SIZE)).cqrs_id == "author"
    with pytest.raises(BadMessage, match="over the limit of 16777216 bytes"):
        wire.decode(_body_of_size(wire.MAX_BODY_SIZE + 1))


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_decode__takes_meta_nested_exactly_to_the_depth_limit_and_refuses_one_level_more(
        limit):
    """The body object is level 1; meta may nest up to `limit` levels in all, not one more."""
    at = {**ev.save("author", 1, 0), "meta": _nested(limit - 1)} if limit > 1 else None
    if at is not None:
        assert wire.decode(json.dumps(at).encode(), max_depth=limit).meta == _nested(limit - 1)
    past = {**ev.save("author", 1, 0), "meta": _nested(limit)}
    with pytest.raises(BadMessage, match=f"deeper than the limit of {limit} levels"):
        wire.decode(json.dumps(past).encode(), max_depth=limit)


def test_decode__default_depth_limit_is_64_levels():
    """The default max_depth is 64: 64 levels decode, 65 are refused."""
    assert wire.MAX_DEPTH == 64
    at = {**ev.save("author", 1, 0), "meta": _nested(63)}
    assert wire.decode(json.dumps(at).encode()).meta == _nested(63)
    past = {**ev.save("author", 1, 0), "meta": _nested(64)}
    with pytest.raises(BadMessage, match="limit of 64 levels"):
        wire.decode(json.dumps(past).encode())


@pytest.mark.parametrize("levels, limit, over", [
    (3, 3, False), (4, 3, True), (1, 1, False), (2, 1, True), (1, 0, True),
])
def test_depth_over__counts_the_outermost_container_as_level_one(levels, limit, over):
    """depth_over is true only past the limit; scalars are no level at all."""
    assert wire.depth_over(_nested(levels), limit) is over
    assert wire.depth_over({"a": _nested(levels - 1) if levels > 1 else 1}, limit) is over
    assert wire.depth_over("scalar", 0) is False


def test_depth_over__looks_into_every_sibling_not_only_the_first():
    """A deep value in the last key of an object, or the last item of a list, is found."""
    assert wire.depth_over({"a": 1, "b": [], "c": [[[]]]}, 3) is True
    assert wire.depth_over([1, [], [[[]]]], 3) is True
    assert wire.depth_over([1, [], [[]]], 3) is False


def test_json_object__size_limit_is_inclusive():
    """json_object reads a body of exactly max_size bytes and gives up on one byte more."""
    assert wire.json_object(_body_of_size(300), max_size=300)["cqrs_id"] == "author"
    assert wire.json_object(_body_of_size(301), max_size=300) is None


@pytest.mark.parametrize("body", [b"[1, 2]", b"[]", b'"text"', b"3", b"null"])
def test_reset_for_retry__a_body_that_is_valid_json_but_no_object_comes_back_unchanged(body):
    """A dead letter whose body is a JSON array (or scalar) is retried as it is, no error."""
    assert wire.reset_for_retry(body, 60, now=NOW) == body


def test_reset_for_retry__a_letter_without_expires_gains_none():
    """Retrying a letter that never expired keeps it unexpiring: no `expires` is added."""
    body = {**ev.save("a", 1, 0), "retries": 4}
    del body["expires"]
    fresh = json.loads(wire.reset_for_retry(json.dumps(body).encode(), 60, now=NOW))
    assert fresh == {**body, "retries": 0}
    assert "expires" not in fresh
    nulled = {**body, "expires": None}
    fresh = json.loads(wire.reset_for_retry(json.dumps(nulled).encode(), 60, now=NOW))
    assert fresh["expires"] is None


def test_reset_for_retry__renews_expires_exactly_message_ttl_after_now():
    """The renewed `expires` is now + message_ttl; without a ttl the old one is kept."""
    body = {**ev.save("a", 1, 0), "retries": 2, "expires": "2000-01-01T00:00:00+00:00"}
    raw = json.dumps(body).encode()
    fresh = json.loads(wire.reset_for_retry(raw, 90, now=NOW))
    assert fresh["expires"] == "2030-06-01T12:01:30+00:00"
    assert fresh["retries"] == 0
    kept = json.loads(wire.reset_for_retry(raw, None, now=NOW))
    assert kept["expires"] == "2000-01-01T00:00:00+00:00"


@pytest.mark.parametrize("body, expected", [
    (b'{"expires": "2030-01-01T00:00:00"}', True),
    (b'{"expires": null}', False),
    (b'{"expires": ""}', False),
    (b'{"cqrs_id": "a"}', False),
    (b"[1]", False),
])
def test_has_expiry__only_for_an_object_with_an_expires_value(body, expected):
    """has_expiry is true only when the body is an object carrying a non-empty `expires`."""
    assert wire.has_expiry(body) is expected


def test_is_expired__exactly_at_the_expires_moment_it_has_expired():
    """Expiry is inclusive: at the very second of `expires` the message is expired, a
    second before it is not."""
    envelope = wire.validate({**ev.save("a", 1, 0), "expires": "2030-06-01T12:00:00+00:00"})
    assert wire.is_expired(envelope, now=NOW) is True
    assert wire.is_expired(envelope, now=NOW - datetime.timedelta(seconds=1)) is False
    assert wire.is_expired(envelope, now=NOW + datetime.timedelta(seconds=1)) is True


# Listed literally, not read from wire.REQUIRED_KEYS: dropping a key from the constant must
# fail this test, not quietly drop its case.
@pytest.mark.parametrize("key", ["signal_type", "cqrs_id", "instance_data", "instance_pk"])
def test_validate__refuses_a_body_missing_any_key_django_cqrs_requires(key):
    """django-cqrs refuses a body without signal_type, cqrs_id, instance_data or instance_pk;
    so do we, naming the key."""
    body = ev.save("author", 1, 0, name="a")
    del body[key]
    with pytest.raises(BadMessage, match=f"key '{key}' is missing"):
        wire.validate(body)


def test_required_keys__are_exactly_the_four_django_cqrs_requires():
    """The constant itself, literally."""
    assert wire.REQUIRED_KEYS == ("signal_type", "cqrs_id", "instance_data", "instance_pk")


def test_preview__shows_the_first_200_characters_of_a_long_body_then_an_ellipsis():
    """A dead-letter log line quotes 200 characters of the body, whole characters even when
    each takes four bytes in UTF-8."""
    assert wire.preview(b"a" * 1000) == "a" * 200 + "..."
    wide = "\N{GRINNING FACE}"
    assert wire.preview((wide * 300).encode()).startswith(wide * 200)
    assert wire.preview(("b" * 150).encode()) == "b" * 150


def test_preview__decodes_no_more_than_four_bytes_for_each_character_it_may_show():
    """Only the first 800 bytes (200 characters of UTF-8's widest) are decoded, so a
    16 MiB body costs a log line no more than a short one: nothing past them shows."""
    assert wire.preview(b" " * 799 + b"x") == "x"
    assert wire.preview(b" " * 800 + b"x") == ""


def test_validate__quotes_a_bad_value_cut_to_100_characters_in_its_reason():
    """The reason a body is refused (kept with the dead letter) quotes the bad value, cut
    to 100 characters, so a huge value cannot fill the reason."""
    body = {**ev.save("author", 1, 0), "retries": "x" * 300}
    with pytest.raises(BadMessage) as refused:
        wire.validate(body)
    assert str(refused.value) == "retries must be a non-negative integer, got '" + "x" * 99 + "..."


def test_delivery_mode__is_what_amqp_calls_persistent():
    """Every message goes out persistent, so a broker restart does not lose it."""
    import pika

    assert wire.DELIVERY_MODE_PERSISTENT == pika.DeliveryMode.Persistent.value
