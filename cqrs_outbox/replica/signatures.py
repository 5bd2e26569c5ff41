"""Apply the replica's signature policy, and keep signed bodies unchanged across retries.

`CQRS['replica']['signatures']`: 'off' checks nothing; 'warn' applies unsigned or badly
signed events but logs and counts each; 'require' refuses them, and the consumer
dead-letters them at once with the reason (unsigned, malformed signature, unknown key,
key not trusted for this cqrs_id, bad signature, too old to rule out a replay).

Nothing unsigned changes what the replica does with a signed event; headers may only
make it stricter:

- A signed body carries its signing time (`signed_at`) in the signed bytes. One signed
  longer ago than `tombstone_retention` is refused: its row may have been deleted and
  the tombstone that would stop it purged since.
- A signed body reaches the replica byte for byte, so its retries count in the header
  `cqrs-retries`, which can only raise the body's `retries`; a `cqrs-expires` header can
  only bring the signed `expires` closer.
- `cqrs_dead_letters retry` gives a signed letter a fresh start in a header of its own,
  `cqrs-retry-stamp`: when it was sent back, its retries (0) and its new `expires`,
  authenticated with an HMAC keyed by the service's SECRET_KEY over those, the
  replica's queue and the body's SHA-256. A stamp that does not verify is ignored.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
from typing import Any

from django.conf import settings as django_settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from cqrs_outbox import conf, keyring
from cqrs_outbox.core import contract, signing, wire
from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.core.escape import one_line

logger = logging.getLogger(__name__)

RETRIES_HEADER = "cqrs-retries"
EXPIRES_HEADER = "cqrs-expires"
STAMP_HEADER = "cqrs-retry-stamp"
STAMP_SALT = "cqrs_outbox.replica.retry-stamp"
STAMP_VERSION = "v1"
TOO_OLD = "too old to rule out a replay"
RETENTION_PATH = "CQRS['replica']['tombstone_retention']"


def headers_of(properties: Any) -> dict:
    """Return a delivery's headers (an empty dict when it has none)."""
    return getattr(properties, "headers", None) or {}


def is_signed(properties: Any) -> bool:
    """Tell whether a delivery carries a signature header."""
    return signing.HEADER in headers_of(properties)


@dataclasses.dataclass(frozen=True)
class Stamp:
    """A dead-letter retry the replica itself made: when, the retries and the new expiry."""

    stamped_at: datetime.datetime
    retries: int
    expires: str | None


def make_stamp(queue: str, body: bytes, now: datetime.datetime, retries: int,
               expires: str | None) -> str:
    """Return the `cqrs-retry-stamp` header value for `body` sent back to `queue`."""
    fields = [STAMP_VERSION, wire.format_expires(now), str(retries), expires or ""]
    return ";".join([*fields, _mac(queue, body, fields, django_settings.SECRET_KEY)])


def read_stamp(headers: dict, queue: str, body: bytes) -> Stamp | None:
    """Return the delivery's retry stamp if this service made it for `body` on `queue`."""
    value = headers.get(STAMP_HEADER)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or value.count(";") != 4:
        return None
    *fields, mac = value.split(";")
    keys = [django_settings.SECRET_KEY, *getattr(django_settings, "SECRET_KEY_FALLBACKS", [])]
    if fields[0] != STAMP_VERSION or not any(
            constant_time_compare(mac, _mac(queue, body, fields, key)) for key in keys):
        return None
    try:
        stamped_at = wire.expires_at(fields[1])
        expires = fields[3] or None
        wire.expires_at(expires)
        retries = int(fields[2])
    except (BadMessage, ValueError):
        return None
    return Stamp(stamped_at, retries, expires) if stamped_at else None


def _mac(queue: str, body: bytes, fields: list[str], key: Any) -> str:
    digest = hashlib.sha256(body).hexdigest()
    message = "\n".join([queue, digest, *fields])
    return salted_hmac(STAMP_SALT, message, secret=key, algorithm="sha256").hexdigest()


def signed_at(envelope: wire.Envelope) -> datetime.datetime | None:
    """Return when the master signed the body (its `signed_at`), or None if unreadable."""
    value = envelope.extra.get(wire.SIGNED_AT_KEY)
    try:
        return wire.expires_at(value) if isinstance(value, str) else None
    except BadMessage:
        return None


class Gate:
    """Check each event against the policy; count what 'warn' let through."""

    def __init__(self, settings: conf.Settings, queue: str = "") -> None:
        self.policy = settings.replica.signatures
        self.retention = settings.replica.tombstone_retention
        self.verifier = keyring.verifier(settings)
        self.queue = queue
        self.warned = 0  # events applied under 'warn' despite their signature

    def refusal(self, label: str, envelope: wire.Envelope, properties: Any,
                body: bytes) -> str | None:
        """Return the reason to dead-letter the event, or None to go on applying it."""
        if self.verifier is None:
            return None
        header = headers_of(properties).get(signing.HEADER)
        reason = self.verifier.refusal(envelope.cqrs_id, body, header)
        if reason is None:
            reason = self.replay_refusal(envelope, properties, body)
        if reason is None or self.policy == conf.SIGNATURES_REQUIRE:
            return reason
        self.warned += 1
        logger.warning("Applying %s %s:%s despite its signature: %s (%s such events so far)",
                       one_line(label), one_line(envelope.cqrs_id, 200),
                       one_line(envelope.instance_pk, 200), reason, self.warned)
        return None

    def replay_refusal(self, envelope: wire.Envelope, properties: Any, body: bytes,
                       now: datetime.datetime | None = None) -> str | None:
        """Return why a signed event is too old to apply, or None if it is recent enough.

        Its time is when the master signed it, or when `cqrs_dead_letters retry` sent it
        back (a stamp this service made).
        """
        stamp = read_stamp(headers_of(properties), self.queue, body)
        moment = stamp.stamped_at if stamp else signed_at(envelope)
        if moment is None:
            return f"{TOO_OLD}: the signed body carries no {wire.SIGNED_AT_KEY}"
        age = (now or timezone.now()) - moment
        if age > datetime.timedelta(seconds=self.retention):
            what = "sent back by cqrs_dead_letters retry" if stamp else "signed"
            return (f"{TOO_OLD}: {what} at {moment.isoformat()}, more than {RETENTION_PATH} "
                    f"({self.retention}s) ago")
        return None


def from_headers(properties: Any, envelope: wire.Envelope, body: bytes,
                 queue: str) -> wire.Envelope:
    """Return the envelope with the `retries` and `expires` a signed body's headers allow.

    Only the replica's own retry stamp renews `expires`; the plain headers can only raise
    `retries` and bring `expires` closer.
    """
    headers = headers_of(properties)
    if signing.HEADER not in headers:
        return envelope
    retries, expires = envelope.retries, envelope.expires
    stamp = read_stamp(headers, queue, body)
    if stamp is not None:
        retries, expires = max(retries, stamp.retries), stamp.expires
    counted = headers.get(RETRIES_HEADER)
    if isinstance(counted, int) and not isinstance(counted, bool) and counted > retries:
        retries = counted
    expires = _sooner(expires, headers.get(EXPIRES_HEADER))
    return dataclasses.replace(envelope, retries=retries, expires=expires)


def _sooner(expires: str | None, header: Any) -> str | None:
    if isinstance(header, bytes):
        header = header.decode("ascii", "replace")
    if not isinstance(header, str):
        return expires
    try:
        proposed = wire.expires_at(header)
        current = wire.expires_at(expires)
    except BadMessage:
        return expires
    if proposed is not None and (current is None or proposed < current):
        return header
    return expires


def reset_for_retry(headers: dict, body: bytes, message_ttl: int, queue: str,
                    now: datetime.datetime | None = None) -> tuple[dict, bytes] | None:
    """Return (headers, body) of a signed dead letter sent back, or None if it is unsigned.

    The body stays as signed; a retry stamp restarts `retries` at 0 and, for a body with
    an `expires`, sets a new one `message_ttl` seconds from now.
    """
    if signing.HEADER not in headers:
        return None
    now = now or timezone.now()
    dropped = (RETRIES_HEADER, EXPIRES_HEADER, STAMP_HEADER)
    headers = {k: v for k, v in headers.items() if k not in dropped}
    expires = wire.expires_after(now, message_ttl) if wire.has_expiry(body) else None
    headers[STAMP_HEADER] = make_stamp(queue, body, now, 0, expires)
    return headers, body


def retention_problems(raw: dict) -> list[conf.Problem]:
    """Check, for signatures='require', that the tombstone retention outlasts every wait a
    signed event may legitimately have: its TTL, the retries, a dead-letter retry's TTL."""
    master = raw.get("master") if isinstance(raw.get("master"), dict) else {}
    replica = raw.get("replica") if isinstance(raw.get("replica"), dict) else {}
    if replica.get("signatures") != conf.SIGNATURES_REQUIRE:
        return []
    retention = replica.get("tombstone_retention", conf.DEFAULT_TOMBSTONE_RETENTION)
    waits = {"cqrs_dead_letters retry's message TTL": contract.RETRY_MESSAGE_TTL}
    ttl = master.get("CQRS_MESSAGE_TTL", conf.DEFAULT_MESSAGE_TTL)
    if _number(ttl):
        waits["CQRS['master']['CQRS_MESSAGE_TTL']"] = ttl
    retries = replica.get("CQRS_MAX_RETRIES", conf.DEFAULT_MAX_RETRIES)
    delay = replica.get("CQRS_RETRY_DELAY", conf.DEFAULT_RETRY_DELAY)
    if _number(retries) and _number(delay):
        waits["the redelivery delay (CQRS_MAX_RETRIES x CQRS_RETRY_DELAY)"] = retries * delay
    if not _number(retention):
        return []
    longest, name = max((seconds, name) for name, seconds in waits.items())
    if retention >= longest:
        return []
    return [conf.Problem(
        "cqrs_outbox.E032",
        f"{RETENTION_PATH} is {retention}s, shorter than {name} ({longest}s): under "
        "signatures='require' a signed event older than the retention is refused as too "
        "old to rule out a replay, so events still within that wait would be refused.",
        f"Set {RETENTION_PATH} to at least {longest} (seconds), or shorten {name}.",
    )]


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
