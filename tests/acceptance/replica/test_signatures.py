"""Signed events end to end: our master signs, our relay sends the signature as a header,
and a replica worker under 'require' applies only what a trusted key signed."""

import datetime
import json
from pathlib import Path

import pytest
from django.test import override_settings

from cqrs_outbox.core import signing, wire
from cqrs_outbox.models import OutboxEvent, Tombstone
from cqrs_outbox.replica import queries
from tests.acceptance.replica import peers, support
from tests.integration.replica import events as ev
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]

SETTINGS = "tests.testproject.settings"
PEER_MASTER = "tests.peers.master_settings"
FORGED_REVISION = 2147483647


class Key:
    """A key pair of the test: its private key file and its public key."""

    def __init__(self, key_id, tmp_path):
        pem, self.public = signing.generate()
        self.id = key_id
        self.path = tmp_path / f"{key_id}.pem"
        self.path.write_bytes(pem)
        self.signer = signing.load_signer(key_id, pem, str(self.path))

    def header(self, body: bytes) -> dict:
        return {signing.HEADER: self.signer.header(body)}


def _policy(policy, trusted):
    return {"CQRS_TEST_SIGNATURES": policy,
            "CQRS_TEST_TRUSTED_KEYS": json.dumps(
                {cqrs_id: {k.id: k.public for k in keys} for cqrs_id, keys in trusted.items()})}


def _signing(settings, key):
    """Return the test process's CQRS settings with `key` as the master's signing key."""
    cqrs = json.loads(json.dumps(settings.CQRS))
    cqrs["master"]["signing_key"] = {"id": key.id, "file": str(key.path)}
    return override_settings(CQRS=cqrs)


@pytest.fixture
def relay(worker_env, tmp_path):
    """Our relay (`cqrs_relay`) as a process, draining the test database's outbox."""
    process = support.django(["cqrs_relay", "--poll-interval", "0.1"], SETTINGS, worker_env,
                             tmp_path / "relay.log")
    yield process
    process.close()


def _fresh(body):
    """Return `body` with a signing time of now, as our master signs."""
    moment = datetime.datetime.now(datetime.timezone.utc)
    return {**body, "signed_at": wire.format_expires(moment)}


def _letters(broker, names):
    return {props.message_id: (props, body)
            for props, body in broker.take_all(names.dead_letter_queue)}


def _author(pk):
    row = models.AuthorRef.objects.filter(pk=pk).first()
    return row and (row.name, row.cqrs_revision)


def test_forged_high_revision_save__dead_lettered_unsigned_and_row_keeps_master_updates(
        broker, names, start_worker, relay, tmp_path, settings):
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [key]}))
    with _signing(settings, key):
        ann = master.Author.objects.create(name="Ann")
        wait_until(lambda: _author(ann.pk) == ("Ann", 0), what="the master's first event")

        forged = ev.save("author", ann.pk, FORGED_REVISION, name="forged")
        broker.publish(forged, "author", message_id="forged")
        wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")

        ann.name = "Ann B."
        ann.save()
        wait_until(lambda: _author(ann.pk) == ("Ann B.", 1), what="the master's update")
    props, body = _letters(broker, names)["forged"]
    assert props.headers["cqrs-reason"].startswith("signature refused: unsigned"), props.headers
    assert json.loads(body) == forged
    assert "retry 1 in" not in worker.log
    assert relay.terminate() == 0 and worker.terminate() == 0


def test_tampered_events__each_dead_lettered_with_its_reason_and_good_ones_applied(
        broker, names, start_worker, tmp_path):
    author_key, publisher_key = Key("authors", tmp_path), Key("publishers", tmp_path)
    ghost = Key("ghost", tmp_path)
    trusted = {"author": [author_key], "publisher": [publisher_key]}

    def signed(key, message_id, body, sent=None):
        raw = json.dumps(_fresh(body)).encode()
        broker.publish(sent or raw, "author", message_id=message_id, headers=key.header(raw))

    signed(author_key, "good1", ev.save("author", 1, 0, name="one"))
    signed(author_key, "changed", ev.save("author", 2, 0, name="two"),
           sent=json.dumps(ev.save("author", 2, 9, name="evil")).encode())
    signed(publisher_key, "other-id", ev.save("author", 3, 9, name="evil"))
    signed(ghost, "unknown", ev.save("author", 4, 9, name="evil"))
    signed(author_key, "good2", ev.save("author", 5, 0, name="five"))
    worker = start_worker(env=_policy("require", trusted))

    wait_until(lambda: broker.count(names.dead_letter_queue) == 3, what="the dead letters")
    wait_until(lambda: _author(1) and _author(5), what="the good events")
    assert sorted(models.AuthorRef.objects.values_list("pk", "name")) == [(1, "one"),
                                                                         (5, "five")]
    reasons = {mid: props.headers["cqrs-reason"]
               for mid, (props, _) in _letters(broker, names).items()}
    assert reasons["changed"].startswith("signature refused: bad signature")
    assert reasons["other-id"].startswith(
        "signature refused: key not trusted for this cqrs_id: 'publishers' may not write "
        "'author'")
    assert reasons["unknown"].startswith("signature refused: unknown key: 'ghost'")
    assert worker.alive and "retry 1 in" not in worker.log
    assert worker.terminate() == 0


def test_key_rotation__nothing_dead_lettered_then_old_key_refused_once_untrusted(
        broker, names, start_worker, relay, tmp_path, settings):
    old, new = Key("k-2025", tmp_path), Key("k-2026", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [old, new]}))
    with _signing(settings, old):
        ann = master.Author.objects.create(name="v0")
    with _signing(settings, new):  # the master moves while relay and worker run
        for n in range(1, 4):
            ann.name = f"v{n}"
            ann.save()
    wait_until(lambda: _author(ann.pk) == ("v3", 3), what="events of both keys")
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0

    worker = start_worker(env=_policy("require", {"author": [new]}))
    with _signing(settings, old):
        ann.name = "old key"
        ann.save()
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the refused event")
    with _signing(settings, new):
        ann.name = "new key"
        ann.save()
    wait_until(lambda: _author(ann.pk) == ("new key", 5), what="the new key's event")
    [(props, body)] = broker.take_all(names.dead_letter_queue)
    assert props.headers["cqrs-reason"].startswith("signature refused: unknown key: 'k-2025'")
    assert json.loads(body)["instance_data"]["name"] == "old key"
    assert relay.terminate() == 0 and worker.terminate() == 0


def test_mixed_fleet__django_cqrs_worker_applies_our_signed_events(
        broker, names, worker_env, tmp_path, settings):
    key = Key("orders-1", tmp_path)
    with _signing(settings, key):
        ann = master.Author.objects.create(name="Ann")
        ann.name = "Ann B."
        ann.save()
    signatures = list(OutboxEvent.objects.values_list("signature", flat=True))
    assert signatures and all(s.startswith("ed25519;orders-1;") for s in signatures)
    with peers.replica_worker(names, worker_env["CQRS_TEST_DB_NAME"], tmp_path) as db:
        wait_until(lambda: peers.rows(db, "SELECT id, name, cqrs_revision FROM "
                                          "peer_replica_authorref")
                   == [(ann.pk, "Ann B.", 1)], what="the django-cqrs replica's row")
        assert broker.count(names.dead_letter_queue) == 0


def test_mixed_fleet__warn_applies_django_cqrs_masters_unsigned_events_and_counts_them(
        broker, names, start_worker, tmp_path):
    worker = start_worker(env=_policy("warn", {"*": [Key("orders-1", tmp_path)]}))
    with peers.database(PEER_MASTER) as db:
        out = support.run_django(
            ["shell", "-c", "from tests.peers.master import scenario; scenario.main()"],
            PEER_MASTER, {"CQRS_PEER_DB_NAME": db, "CQRS_TEST_EXCHANGE": names.exchange},
        )
    expected = {int(pk): row for pk, row in json.loads(out.splitlines()[-1])["author"].items()}
    wait_until(lambda: {r.pk: [r.name, r.cqrs_revision]
                        for r in models.AuthorRef.objects.all()} == expected,
               what="the django-cqrs master's authors")
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0
    warned = [line for line in worker.log.splitlines()
              if "despite its signature: unsigned: no cqrs-signature header" in line]
    assert warned, worker.log
    assert warned[-1].endswith(f"({len(warned)} such events so far)")


def test_signed_event__retries_and_dead_letter_retry_keep_the_signature_valid(
        broker, names, start_worker, worker_env, tmp_path):
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"*": [key]}))
    raw = json.dumps(_fresh(ev.save("flaky", 2, 0, name="fail:always"))).encode()
    broker.publish(raw, "flaky", message_id="flaky", headers=key.header(raw))

    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="a dead letter")
    dumped = support.run_django(["cqrs_dead_letters", "dump", "--with-reasons"], SETTINGS,
                                worker_env)
    letter = json.loads(dumped.splitlines()[-1])
    assert letter["reason"].startswith("failed after 3 retries: RuntimeError"), letter
    assert letter["body"].encode() == raw  # three retries later, byte for byte

    (Path(worker_env["CQRS_TEST_CONTROL_DIR"]) / "fixed").touch()
    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env)
    assert "Retrying: 1/1" in out
    wait_until(lambda: models.FlakyRef.objects.filter(pk=2).exists(), what="the fixed row")
    assert broker.count(names.dead_letter_queue) == 0
    assert "signature refused" not in worker.log
    assert worker.terminate() == 0


def test_cqrs_sync__sends_signed_syncs_a_requiring_replica_applies(
        broker, names, start_worker, relay, worker_env, tmp_path, settings):
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [key]}))
    with _signing(settings, key):
        ann = master.Author.objects.create(name="Ann")
    wait_until(lambda: _author(ann.pk) == ("Ann", 0), what="the first event")
    models.AuthorRef.objects.filter(pk=ann.pk).update(name="drifted")

    spec = json.dumps({"id": key.id, "file": str(key.path)})
    support.run_django(["cqrs_sync", "--cqrs-id", "author", "-f", "{}"], SETTINGS,
                       {**worker_env, "CQRS_TEST_SIGNING_KEY": spec})
    wait_until(lambda: _author(ann.pk) == ("Ann", 0), what="the SYNC")
    assert broker.count(names.dead_letter_queue) == 0
    assert relay.terminate() == 0 and worker.terminate() == 0


def _signed_body(days_ago, expires=None, **fields):
    """A body as our master signs it, `days_ago` days ago (the test holds the key)."""
    body = ev.save("author", 7, 0, **fields)
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    body["signed_at"] = wire.format_expires(moment)
    body["expires"] = expires
    return json.dumps(body).encode()


def test_expired_signed_event__a_later_expires_header_does_not_revive_it(
        broker, names, start_worker, tmp_path):
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [key]}))
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    raw = _signed_body(0, expires=wire.format_expires(past), name="expired")
    future = wire.format_expires(past + datetime.timedelta(days=365))
    broker.publish(raw, "author", message_id="expired",
                   headers={**key.header(raw), "cqrs-expires": future})
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")
    [(props, body)] = broker.take_all(names.dead_letter_queue)
    assert props.headers["cqrs-reason"] == f"expired at {wire.format_expires(past)}"
    assert body == raw and not models.AuthorRef.objects.filter(pk=7).exists()
    assert worker.terminate() == 0


def test_signed_save_replayed_after_its_tombstone_was_purged__refused_as_too_old(
        broker, names, start_worker, tmp_path):
    """A SAVE captured eight days ago, replayed once the row's DELETE has been applied and
    its tombstone purged: only the signing time can stop it."""
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [key]}))
    delete = json.dumps(_fresh(ev.delete("author", 7, 1))).encode()
    broker.publish(delete, "author", message_id="delete", headers=key.header(delete))
    wait_until(lambda: Tombstone.objects.filter(cqrs_id="author", instance_pk="7").exists(),
               what="the tombstone")
    assert queries.purge_tombstones("default", retention=0) == 1

    captured = _signed_body(8, name="deleted long ago")
    broker.publish(captured, "author", message_id="replay", headers=key.header(captured))
    fresh = json.dumps(_fresh(ev.save("author", 8, 0, name="fresh"))).encode()
    broker.publish(fresh, "author", message_id="fresh", headers=key.header(fresh))
    wait_until(lambda: _author(8) == ("fresh", 0), what="the fresh event")
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the refused replay")
    [(props, body)] = broker.take_all(names.dead_letter_queue)
    reason = props.headers["cqrs-reason"]
    assert reason.startswith("signature refused: too old to rule out a replay: signed at "), \
        reason
    assert "more than CQRS['replica']['tombstone_retention'] (604800s) ago" in reason
    assert body == captured and _author(7) is None
    assert worker.terminate() == 0


def test_dead_letter_retry__gives_an_old_expired_signed_letter_a_fresh_start(
        broker, names, start_worker, worker_env, tmp_path):
    """The letter was refused as too old and is expired; the operator sends it back, and
    the replica's own stamp, not the wire, vouches for its new expiry and age."""
    key = Key("orders-1", tmp_path)
    worker = start_worker(env=_policy("require", {"author": [key]}))
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=8)
    raw = _signed_body(9, expires=wire.format_expires(past), name="kept")
    broker.publish(raw, "author", message_id="old", headers=key.header(raw))
    wait_until(lambda: broker.count(names.dead_letter_queue) == 1, what="the dead letter")

    out = support.run_django(["cqrs_dead_letters", "retry"], SETTINGS, worker_env)
    assert "Retrying: 1/1 message old author:7" in out
    wait_until(lambda: _author(7) == ("kept", 0), what="the retried letter")
    assert broker.count(names.dead_letter_queue) == 0
    assert worker.terminate() == 0
