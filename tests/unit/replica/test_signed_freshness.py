"""Signed means signed: headers only make the replica stricter, replays cannot outlive the
tombstones, and only the replica's own retry stamp gives a signed letter a fresh start."""

import dataclasses
import datetime
import json
from types import SimpleNamespace

import pytest
from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox import conf
from cqrs_outbox.core import signing, wire
from cqrs_outbox.master import events
from cqrs_outbox.replica import signatures
from tests.testproject.master import models as master

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
QUEUE = "billing"


@pytest.fixture
def key(tmp_path):
    pem, public = signing.generate()
    path = tmp_path / "k1.pem"
    path.write_bytes(pem)
    return {"signer": signing.load_signer("k1", pem, "test"), "public": public,
            "path": str(path)}


def _body(signed_at=NOW, expires=None, **extra):
    body = {"signal_type": "SAVE", "cqrs_id": "author", "instance_pk": 7,
            "instance_data": {"id": 7, "name": "Ann", "cqrs_revision": 0,
                              "cqrs_updated": str(NOW)},
            "previous_data": None, "correlation_id": None, "retries": 0,
            "expires": expires, "meta": None, **extra}
    if signed_at is not None:
        body["signed_at"] = wire.format_expires(signed_at)
    return json.dumps(body).encode()


def _props(key, body, **headers):
    return SimpleNamespace(headers={signing.HEADER: key["signer"].header(body), **headers})


def _gate(key, policy="require", retention=7 * 86400):
    cqrs = {"url": "amqp://h/", "queue": QUEUE,
            "replica": {"signatures": policy, "tombstone_retention": retention,
                        "trusted_keys": {"*": {"k1": key["public"]}}}}
    with override_settings(CQRS=cqrs):
        return signatures.Gate(conf.get(), QUEUE)


# Headers may only make the replica stricter.
def test_expires_header__cannot_extend_a_signed_expiry(key):
    body = _body(expires=wire.format_expires(NOW - DAY))
    later = wire.format_expires(NOW + 365 * DAY)
    envelope = signatures.from_headers(_props(key, body, **{"cqrs-expires": later}),
                                       wire.decode(body), body, QUEUE)
    assert envelope.expires == wire.format_expires(NOW - DAY)
    assert wire.is_expired(envelope, NOW)


def test_expires_header__can_bring_it_closer_or_give_an_unexpiring_body_one(key):
    sooner = wire.format_expires(NOW - DAY)
    for expires in (wire.format_expires(NOW + DAY), None):
        body = _body(expires=expires)
        envelope = signatures.from_headers(_props(key, body, **{"cqrs-expires": sooner}),
                                           wire.decode(body), body, QUEUE)
        assert envelope.expires == sooner


def test_retries_header__only_raises_the_count(key):
    body = _body(retries=3)
    lower = signatures.from_headers(_props(key, body, **{"cqrs-retries": 0}),
                                    wire.decode(body), body, QUEUE)
    higher = signatures.from_headers(_props(key, body, **{"cqrs-retries": 5}),
                                     wire.decode(body), body, QUEUE)
    assert (lower.retries, higher.retries) == (3, 5)


def test_expires_header_that_is_no_time__the_signed_expiry_stands(key):
    """A hostile `cqrs-expires` that does not parse cannot strip a signed body's expiry."""
    signed = wire.format_expires(NOW - DAY)
    body = _body(expires=signed)
    for header in ("next tuesday", b"\xff\xfe"):
        envelope = signatures.from_headers(_props(key, body, **{"cqrs-expires": header}),
                                           wire.decode(body), body, QUEUE)
        assert envelope.expires == signed
        assert wire.is_expired(envelope, NOW)


def test_unsigned_body__headers_change_nothing():
    body = _body(expires=wire.format_expires(NOW - DAY))
    props = SimpleNamespace(headers={"cqrs-expires": wire.format_expires(NOW + DAY),
                                     "cqrs-retries": 9})
    assert signatures.from_headers(props, wire.decode(body), body, QUEUE) == wire.decode(body)


# The replica's own retry stamp.
def test_retry_stamp__renews_expires_and_retries_of_the_body_it_was_made_for(key):
    body = _body(expires=wire.format_expires(NOW - DAY), retries=0)
    headers, same = signatures.reset_for_retry({signing.HEADER: "x", "cqrs-retries": 4},
                                               body, 86400, QUEUE, now=NOW)
    assert same == body and "cqrs-retries" not in headers
    props = _props(key, body, **{signatures.STAMP_HEADER: headers[signatures.STAMP_HEADER]})
    envelope = signatures.from_headers(props, wire.decode(body), body, QUEUE)
    assert envelope.expires == wire.format_expires(NOW + DAY)
    assert envelope.retries == 0


@pytest.mark.parametrize("tamper", ["other body", "other queue", "edited", "other secret"])
def test_retry_stamp__that_does_not_verify_is_ignored(key, tamper):
    body = _body(expires=wire.format_expires(NOW - DAY))
    stamp = signatures.make_stamp(QUEUE, body, NOW, 0, wire.format_expires(NOW + DAY))
    queue, checked = QUEUE, body
    if tamper == "other body":
        checked = _body(expires=wire.format_expires(NOW - DAY), meta={"x": 1})
    elif tamper == "other queue":
        queue = "other"
    elif tamper == "edited":
        stamp = stamp.replace(wire.format_expires(NOW + DAY),
                              wire.format_expires(NOW + 999 * DAY))
    props = _props(key, checked, **{signatures.STAMP_HEADER: stamp})
    with override_settings(SECRET_KEY="another" if tamper == "other secret" else "test-only"):
        envelope = signatures.from_headers(props, wire.decode(checked), checked, queue)
    assert envelope.expires == wire.format_expires(NOW - DAY)


def test_retry_stamp__whose_expiry_is_no_time_is_ignored_even_though_it_verifies(key):
    """A stamp is only trusted whole: one whose `expires` does not parse gives no fresh
    start, and the body's own expiry stands."""
    body = _body(expires=wire.format_expires(NOW - DAY), retries=2)
    stamp = signatures.make_stamp(QUEUE, body, NOW, 0, "soon")
    assert signatures.read_stamp({signatures.STAMP_HEADER: stamp}, QUEUE, body) is None
    props = _props(key, body, **{signatures.STAMP_HEADER: stamp})
    envelope = signatures.from_headers(props, wire.decode(body), body, QUEUE)
    assert (envelope.expires, envelope.retries) == (wire.format_expires(NOW - DAY), 2)


def test_retry_stamp__made_with_a_previous_secret_key_still_verifies(key):
    body = _body(expires=wire.format_expires(NOW - DAY))
    with override_settings(SECRET_KEY="old-secret"):
        stamp = signatures.make_stamp(QUEUE, body, NOW, 0, wire.format_expires(NOW + DAY))
    with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"]):
        found = signatures.read_stamp({signatures.STAMP_HEADER: stamp}, QUEUE, body)
    assert found == signatures.Stamp(NOW, 0, wire.format_expires(NOW + DAY))


# Replays cannot outlive the tombstones.
def test_signed_event_older_than_the_retention__refused_as_a_possible_replay(key):
    gate = _gate(key)
    old = _body(signed_at=NOW - 8 * DAY)
    reason = gate.replay_refusal(wire.decode(old), _props(key, old), old, now=NOW)
    assert reason.startswith("too old to rule out a replay: signed at 2026-03-02T12:00:00")
    assert "CQRS['replica']['tombstone_retention'] (604800s)" in reason
    recent = _body(signed_at=NOW - 6 * DAY)
    assert gate.replay_refusal(wire.decode(recent), _props(key, recent), recent, now=NOW) \
        is None


def test_signed_event_exactly_as_old_as_the_retention__still_applied(key):
    """The retention is how long a tombstone is kept, so an event signed exactly that long
    ago is still covered; one microsecond more and it is refused."""
    gate = _gate(key, retention=86400)
    body = _body(signed_at=NOW - DAY)
    assert gate.replay_refusal(wire.decode(body), _props(key, body), body, now=NOW) is None
    later = NOW + datetime.timedelta(microseconds=1)
    assert gate.replay_refusal(wire.decode(body), _props(key, body), body, now=later) \
        .startswith("too old to rule out a replay")


def test_signed_event_without_signing_time__refused_as_a_possible_replay(key):
    body = _body(signed_at=None)
    reason = _gate(key).replay_refusal(wire.decode(body), _props(key, body), body, now=NOW)
    assert reason == "too old to rule out a replay: the signed body carries no signed_at"


def test_signing_time_outside_the_signed_bytes__the_signature_fails(key):
    body = _body(signed_at=NOW - 8 * DAY)
    moved = body.replace(wire.format_expires(NOW - 8 * DAY).encode(),
                         wire.format_expires(NOW).encode())
    reason = _gate(key).refusal("message m", wire.decode(moved), _props(key, body), moved)
    assert reason.startswith("bad signature")


def test_stamp_of_a_dead_letter_retry__restarts_the_age(key):
    old = _body(signed_at=NOW - 30 * DAY)
    headers, _ = signatures.reset_for_retry({signing.HEADER: "x"}, old, 86400, QUEUE,
                                            now=NOW - DAY)
    props = _props(key, old, **{signatures.STAMP_HEADER: headers[signatures.STAMP_HEADER]})
    assert _gate(key).replay_refusal(wire.decode(old), props, old, now=NOW) is None


def test_warn__applies_an_old_signed_event_with_a_warning(key, caplog):
    old = _body(signed_at=NOW - 30 * DAY)
    assert _gate(key, "warn").refusal("message m", wire.decode(old), _props(key, old),
                                      old) is None
    assert "despite its signature: too old to rule out a replay" in caplog.text


def test_warn__cuts_a_long_cqrs_id_and_pk_in_its_warning(key, caplog):
    """A hostile id cannot flood the log: each shows at most 200 characters."""
    old = _body(signed_at=NOW - 30 * DAY)
    envelope = dataclasses.replace(wire.decode(old), cqrs_id="a" * 300, instance_pk="7" * 300)
    assert _gate(key, "warn").refusal("message m", envelope, _props(key, old), old) is None
    assert f"message m {'a' * 200}...:{'7' * 200}... despite" in caplog.text


# Our master signs its signing time; a SYNC's is when it was written.
def test_builder__signs_its_signing_time_inside_the_body(key, settings):
    settings.CQRS = {**settings.CQRS, "master": {"signing_key": {"id": "k1",
                                                                 "file": key["path"]}}}
    old_row = {"id": 7, "name": "Ann", "cqrs_revision": 3,
               "cqrs_updated": "2020-01-01 00:00:00+00:00"}
    event = events.build(master.Author(id=7, name="Ann", cqrs_revision=3), "SYNC", "default",
                         data=old_row)
    body = json.loads(event.payload)
    signed_at = wire.expires_at(body["signed_at"])
    assert abs(signed_at - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(
        minutes=5)
    verifier = signing.Verifier({"author": {"k1": signing.load_public(key["public"], "t")}})
    assert verifier.refusal("author", event.payload.encode(), event.signature) is None


def test_builder__unsigned_bodies_carry_no_signing_time():
    event = events.build(master.Author(id=7, name="Ann", cqrs_revision=0), "SAVE", "default",
                         data={"id": 7, "name": "Ann", "cqrs_revision": 0, "cqrs_updated": "x"})
    assert "signed_at" not in json.loads(event.payload)


# The start-up check.
def _ids(replica, master=None):
    cqrs = {"url": "amqp://h/", "queue": "q", "master": master or {},
            "replica": {"trusted_keys": {"*": {"k1": signing.generate()[1]}}, **replica}}
    with override_settings(CQRS=cqrs):
        return [(m.id, m.msg) for m in cqrs_checks.check_settings()]


def test_check__retention_shorter_than_the_ttl_is_E032_naming_the_setting():
    [(check_id, msg)] = _ids({"signatures": "require", "tombstone_retention": 3600},
                             {"CQRS_MESSAGE_TTL": 7200})
    assert check_id == "cqrs_outbox.E032"
    assert msg.startswith("CQRS['replica']['tombstone_retention'] is 3600s, shorter than ")
    assert "(86400s)" in msg


def test_check__retention_shorter_than_the_redelivery_delay_is_E032():
    [(check_id, msg)] = _ids({"signatures": "require", "tombstone_retention": 100000,
                              "CQRS_MAX_RETRIES": 100, "CQRS_RETRY_DELAY": 3600})
    assert check_id == "cqrs_outbox.E032"
    assert "the redelivery delay (CQRS_MAX_RETRIES x CQRS_RETRY_DELAY) (360000s)" in msg


def test_check__default_retention_and_other_policies_pass():
    assert _ids({"signatures": "require"}) == []
    assert _ids({"signatures": "warn", "tombstone_retention": 60}) == []


def test_check__retention_exactly_the_longest_wait_passes():
    assert _ids({"signatures": "require", "tombstone_retention": 86400},
                {"CQRS_MESSAGE_TTL": 86400}) == []
    [(check_id, _)] = _ids({"signatures": "require", "tombstone_retention": 86399})
    assert check_id == "cqrs_outbox.E032"


def test_check__endless_retries_leave_the_other_waits_checked():
    """CQRS_MAX_RETRIES = None (retry for ever, as django-cqrs allows) has no bound to
    compare, so the check weighs the TTLs alone and does not fail on the None."""
    assert _ids({"signatures": "require", "CQRS_MAX_RETRIES": None,
                 "CQRS_RETRY_DELAY": 3600}) == []
    [(check_id, msg)] = _ids({"signatures": "require", "tombstone_retention": 3600,
                              "CQRS_MAX_RETRIES": None})
    assert check_id == "cqrs_outbox.E032"
    assert "shorter than cqrs_dead_letters retry's message TTL (86400s)" in msg


def test_retention_problems__a_retention_that_is_no_number_is_left_to_its_own_check():
    """E032 only compares numbers; the setting's type error is reported by the settings
    check, once."""
    for retention in ("a week", 0, True):
        assert signatures.retention_problems(
            {"replica": {"signatures": "require", "tombstone_retention": retention}}) == []
    [problem] = signatures.retention_problems(
        {"replica": {"signatures": "require", "tombstone_retention": 1}})
    assert problem.id == "cqrs_outbox.E032" and " is 1s, shorter than " in problem.msg
    [(check_id, msg)] = _ids({"signatures": "require", "tombstone_retention": "a week"})
    assert check_id != "cqrs_outbox.E032" and "tombstone_retention" in msg
