"""Signing keys: the header, the verifier's reasons, the system checks and `cqrs_keys`."""

import io
import json
import os
import stat
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox.core import signing
from cqrs_outbox.master import events
from tests.testproject.master import models as master

BODY = b'{"signal_type":"SAVE","cqrs_id":"author"}'


@pytest.fixture
def key(tmp_path):
    pem, public = signing.generate()
    path = tmp_path / "k1.pem"
    path.write_bytes(pem)
    return {"pem": pem, "public": public, "path": str(path)}


def _ids(value):
    with override_settings(CQRS={"url": "amqp://h/", "queue": "q", **value}):
        return sorted(m.id for m in cqrs_checks.check_settings())


def test_header__round_trips_and_verifies_the_exact_bytes_only(key):
    signer = signing.load_signer("k1", key["pem"], "test")
    parsed = signing.parse_header(signer.header(BODY))
    public = signing.load_public(key["public"], "test")
    assert parsed.key_id == "k1"
    assert signing.verify(public, parsed.signature, BODY)
    assert not signing.verify(public, parsed.signature, BODY + b" ")


@pytest.mark.parametrize("value, words", [
    ("rsa;k1;AAAA", "scheme 'rsa'"),
    ("ed25519;k1", "must read"),
    ("ed25519;k1;AAAA", "not 64"),
    # Unpadded, as the header carries it: 75 characters are 56 bytes once padded.
    ("ed25519;k1;" + "A" * 75, "the signature is 56 bytes, not 64"),
    ("ed25519;k1;" + "A" * 85, "not base64"),  # no padding makes 85 characters whole
    ("ed25519;bad key;" + "A" * 86, "key id"),
])
def test_malformed_header__refused_saying_what_is_off(key, value, words):
    verifier = signing.Verifier({"*": {"k1": signing.load_public(key["public"], "t")}})
    reason = verifier.refusal("author", BODY, value)
    assert reason.startswith("malformed signature") and words in reason, reason


def test_builder__signs_the_payload_it_stores(key, settings):
    settings.CQRS = {**settings.CQRS, "master": {"signing_key": {"id": "k1",
                                                                 "file": key["path"]}}}
    event = events.build(master.Author(id=7, name="Ann", cqrs_revision=0), "SAVE", "default",
                         data={"id": 7, "name": "Ann", "cqrs_revision": 0, "cqrs_updated": "x"})
    verifier = signing.Verifier({"author": {"k1": signing.load_public(key["public"], "t")}})
    assert event.signature.startswith("ed25519;k1;")
    assert verifier.refusal("author", event.payload.encode(), event.signature) is None


def test_builder__signs_nothing_without_a_signing_key():
    event = events.build(master.Author(id=7, name="Ann", cqrs_revision=0), "SAVE", "default",
                         data={"id": 7, "name": "Ann", "cqrs_revision": 0, "cqrs_updated": "x"})
    assert event.signature is None


def test_check__unreadable_key_file_is_E019(tmp_path):
    missing = str(tmp_path / "nope.pem")
    assert _ids({"master": {"signing_key": {"id": "k1", "file": missing}}}) == [
        "cqrs_outbox.E019"]


def test_check__key_inline_in_settings_is_E019(key):
    spec = {"id": "k1", "key": key["pem"].decode()}
    assert _ids({"master": {"signing_key": spec}}) == ["cqrs_outbox.E019"]


def test_check__public_key_where_a_private_one_is_needed_is_E020(key, tmp_path):
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key["pem"], None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem)
    assert _ids({"master": {"signing_key": {"id": "k1", "file": str(path)}}}) == [
        "cqrs_outbox.E020"]


def test_check__require_without_trusted_keys_is_E021():
    assert _ids({"replica": {"signatures": "require"}}) == ["cqrs_outbox.E021"]


def test_check__key_id_used_for_two_keys_is_E022(key):
    other = signing.generate()[1]
    trusted = {"author": {"k1": key["public"]}, "publisher": {"k1": other}}
    assert _ids({"replica": {"trusted_keys": trusted, "signatures": "require"}}) == [
        "cqrs_outbox.E022"]


def test_check__bad_policy_names_the_choices():
    with override_settings(CQRS={"url": "amqp://h/", "queue": "q",
                                 "replica": {"signatures": "strict"}}):
        [message] = cqrs_checks.check_settings()
    assert message.id == "cqrs_outbox.E004" and "'require'" in message.msg


def test_check__good_signing_settings_pass(key):
    assert _ids({"master": {"signing_key": {"id": "k1", "file": key["path"]}},
                 "replica": {"signatures": "require",
                             "trusted_keys": {"*": {"k1": key["public"]}}}}) == []


def test_check__without_cryptography_is_E018_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    with override_settings(CQRS={"url": "amqp://h/", "queue": "q",
                                 "replica": {"signatures": "warn"}}):
        [message] = cqrs_checks.check_settings()
    assert message.id == "cqrs_outbox.E018"
    assert "pip install 'cqrs-outbox[signing]'" in message.hint


def test_cqrs_keys_generate__private_file_0600_and_settings_printed(tmp_path, settings):
    path = str(tmp_path / "orders.pem")
    out = io.StringIO()
    call_command("cqrs_keys", "generate", "--id", "orders-1", "--out", path, stdout=out)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = out.getvalue()
    assert f"'signing_key'] = {{'id': 'orders-1', 'file': {path!r}}}" in text
    shown = io.StringIO()
    call_command("cqrs_keys", "show", "--file", path, stdout=shown)
    public = shown.getvalue().strip()
    assert f"{{'*': {{'orders-1': {public!r}}}}}" in text
    settings.CQRS = {**settings.CQRS, "master": {"signing_key": {"id": "orders-1",
                                                                 "file": path}}}
    configured = io.StringIO()
    call_command("cqrs_keys", "show", stdout=configured)
    assert configured.getvalue().strip() == f"orders-1 {public}"


def test_cqrs_keys_generate__never_overwrites_a_key(tmp_path):
    path = tmp_path / "orders.pem"
    path.write_text("keep me")
    with pytest.raises(CommandError, match="exists already"):
        call_command("cqrs_keys", "generate", "--id", "orders-1", "--out", str(path))
    assert path.read_text() == "keep me"


def test_trusted_keys__json_settings_are_accepted(key):
    # Settings often come from JSON in the environment.
    trusted = json.loads(json.dumps({"*": {"k1": key["public"]}}))
    assert _ids({"replica": {"signatures": "warn", "trusted_keys": trusted}}) == []


@pytest.mark.parametrize("key_id", [None, 5, b"k1", ["k1"], "", "k 1", "k" * 65])
def test_key_id__not_a_short_name_is_a_configuration_error_naming_it(key_id):
    """A key id that is not 1-64 letters, digits, '.', '_' or '-' (or not text at all)
    is refused with the setting's rule, never with a TypeError from the check itself."""
    from cqrs_outbox.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="must be 1-64 characters") as raised:
        signing.check_key_id(key_id)
    assert repr(key_id)[:20] in str(raised.value)


def test_key_id__a_short_name_is_returned_as_given():
    assert signing.check_key_id("k1.prod_2-b") == "k1.prod_2-b"
    assert signing.check_key_id("k" * 64) == "k" * 64


def test_load_signer__refuses_a_bad_key_id_before_reading_the_key(key):
    from cqrs_outbox.core.errors import ConfigurationError

    pem = key["pem"]
    with pytest.raises(ConfigurationError, match="key id 'k 1' must be 1-64 characters"):
        signing.load_signer("k 1", pem, "KEYFILE")


def test_load_signer__text_that_is_no_key_is_unreadable_not_a_public_key():
    with pytest.raises(signing.ConfigurationError, match="KEYFILE is not a readable") as raised:
        signing.load_signer("k1", b"not a key at all", "KEYFILE")
    assert not isinstance(raised.value, signing.WrongKeyKind)


def test_load_signer__a_file_with_the_public_key_beside_the_private_one_signs(key):
    """A PEM file holding the private key and, after it, its public key (as some tools
    write them) is a private key file: it signs."""
    from cryptography.hazmat.primitives import serialization

    pem = key["pem"]
    private = serialization.load_pem_private_key(pem, password=None)
    both = pem + private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signer = signing.load_signer("k1", both, "KEYFILE")
    assert signer.public_key() == key["public"]


def test_load_public__a_stray_character_in_the_key_is_not_base64(key):
    """A public key with a character outside base64 in it (a paste gone wrong) is
    refused, not decoded by skipping the character into a key that happens to fit."""
    public = key["public"]
    assert signing.load_public(public, "WHERE") is not None
    with pytest.raises(signing.ConfigurationError, match="WHERE is not base64"):
        signing.load_public(public[:10] + "*" + public[10:], "WHERE")
