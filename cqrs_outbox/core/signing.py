"""Sign and verify event bodies with Ed25519: the primitives and the header format.

The master signs the exact bytes of an event body when it builds the outbox row; the
signature travels in the AMQP header `cqrs-signature` as `ed25519;<key id>;<signature>`
(the signature in unpadded URL-safe base64), and the body is left unchanged. Replicas
verify the same bytes against the public keys they trust for the event's cqrs_id.

The `cryptography` package is optional (the `signing` extra) and imported only when a
key is loaded, so a service that does not sign pays nothing for this module.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from cqrs_outbox.core.errors import ConfigurationError

HEADER = "cqrs-signature"
SCHEME = "ed25519"
INSTALL_HINT = "Install the signing extra: pip install 'cqrs-outbox[signing]'."
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

# Why a replica refuses an event; the dead-letter reason opens with one of these.
UNSIGNED = "unsigned"
MALFORMED = "malformed signature"
UNKNOWN_KEY = "unknown key"
UNTRUSTED_KEY = "key not trusted for this cqrs_id"
BAD_SIGNATURE = "bad signature"


class SigningUnavailable(ConfigurationError):
    """The `cryptography` package is not installed."""


class WrongKeyKind(ConfigurationError):
    """A public key was given where a private one is needed, or the other way round."""


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise SigningUnavailable(f"signed events need the cryptography package. {INSTALL_HINT}") \
            from exc
    return ed25519


def require() -> None:
    """Raise SigningUnavailable (with the install hint) if `cryptography` is missing."""
    _ed25519()


def check_key_id(key_id: Any) -> str:
    """Return `key_id` if it can travel in the header; raise ConfigurationError if not."""
    if not isinstance(key_id, str) or not KEY_ID_PATTERN.match(key_id):
        raise ConfigurationError(
            f"key id {key_id!r} must be 1-64 characters of letters, digits, '.', '_' or '-'"
        )
    return key_id


@dataclass(frozen=True)
class Signer:
    """A private key and its id: signs bodies and returns the header value."""

    key_id: str
    private_key: Any

    def header(self, body: bytes) -> str:
        """Return the `cqrs-signature` header value for `body`."""
        return format_header(self.key_id, self.private_key.sign(body))

    def public_key(self) -> str:
        """Return the matching public key as settings hold it (base64 of the raw 32 bytes)."""
        return public_text(self.private_key.public_key())


def load_signer(key_id: str, pem: bytes, source: str) -> Signer:
    """Return a Signer of an Ed25519 private key in PEM; raise ConfigurationError naming `source`.

    A public key, or any other kind of key, is refused with a message saying so.
    """
    check_key_id(key_id)
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization

    if b"PUBLIC KEY" in pem and b"PRIVATE KEY" not in pem:
        raise WrongKeyKind(
            f"{source} holds a public key; signing needs the private key "
            "(the file `cqrs_keys generate` wrote with mode 0600)"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{source} is not a readable private key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigurationError(f"{source} holds a {type(key).__name__}, not an Ed25519 key")
    return Signer(key_id, key)


def generate() -> tuple[bytes, str]:
    """Return a new private key in PEM (PKCS#8) and its public key in settings form."""
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, public_text(key.public_key())


def public_text(public_key: Any) -> str:
    """Return an Ed25519 public key as base64 of its raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public(text: Any, where: str) -> Any:
    """Return the public key of its settings form; raise ConfigurationError naming `where`."""
    ed25519 = _ed25519()
    if not isinstance(text, str):
        raise ConfigurationError(f"{where} must be a base64 public key string, got {text!r}")
    if "PRIVATE KEY" in text:
        raise WrongKeyKind(f"{where} holds a private key; replicas need the public one")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{where} is not base64: {exc}") from exc
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ConfigurationError(
            f"{where} is {len(raw)} bytes, an Ed25519 public key is {PUBLIC_KEY_BYTES}"
        )
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def format_header(key_id: str, signature: bytes) -> str:
    """Return the header value carrying `signature` made with key `key_id`."""
    return f"{SCHEME};{key_id};{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


@dataclass(frozen=True)
class Parsed:
    key_id: str
    signature: bytes


def parse_header(value: Any) -> Parsed:
    """Return the key id and signature of a header value; raise ValueError saying what is off."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        raise ValueError(f"{HEADER} must be a string")
    parts = value.split(";")
    if len(parts) != 3:
        raise ValueError(f"{HEADER} must read '{SCHEME};<key id>;<signature>'")
    scheme, key_id, encoded = parts
    if scheme != SCHEME:
        raise ValueError(f"scheme {scheme[:20]!r} is not {SCHEME!r}")
    if not KEY_ID_PATTERN.match(key_id):
        raise ValueError("the key id is not valid")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the signature is not base64") from exc
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"the signature is {len(signature)} bytes, not {SIGNATURE_BYTES}")
    return Parsed(key_id, signature)


def verify(public_key: Any, signature: bytes, body: bytes) -> bool:
    """Return whether `signature` over `body` was made by the private half of `public_key`."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        return False
    return True


class Verifier:
    """Check signatures against trusted keys: {cqrs_id or '*': {key id: public key}}."""

    def __init__(self, trusted: dict[str, dict[str, Any]]) -> None:
        self.trusted = trusted
        self.known: dict[str, Any] = {}
        for keys in trusted.values():
            self.known.update(keys)

    def refusal(self, cqrs_id: str, body: bytes, header: Any) -> str | None:
        """Return why the event is refused, or None if its signature is good and trusted."""
        if header is None:
            return f"{UNSIGNED}: no {HEADER} header"
        try:
            parsed = parse_header(header)
        except ValueError as exc:
            return f"{MALFORMED}: {exc}"
        if parsed.key_id not in self.known:
            return f"{UNKNOWN_KEY}: {parsed.key_id!r} is in no trusted_keys entry"
        allowed = {**self.trusted.get("*", {}), **self.trusted.get(cqrs_id, {})}
        if parsed.key_id not in allowed:
            return f"{UNTRUSTED_KEY}: {parsed.key_id!r} may not write {cqrs_id!r}"
        if not verify(allowed[parsed.key_id], parsed.signature, body):
            return f"{BAD_SIGNATURE}: the body does not match key {parsed.key_id!r}'s signature"
        return None
