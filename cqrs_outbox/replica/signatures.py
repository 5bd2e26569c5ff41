"""Apply the replica's signature policy, and keep signed bodies unchanged across retries.

`CQRS['replica']['signatures']`: 'off' checks nothing; 'warn' applies unsigned or badly
signed events but logs and counts each; 'require' refuses them, and the consumer
dead-letters them at once with the reason (unsigned, malformed signature, unknown key,
key not trusted for this cqrs_id, bad signature).

A signed body must reach the replica byte for byte, so its retries and a dead-letter
retry carry the `retries` counter and a fresh `expires` in headers instead of rewriting
the body, as django-cqrs does with unsigned ones.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.utils import timezone

from cqrs_outbox import conf, signing
from cqrs_outbox.core import signing as primitives
from cqrs_outbox.core import wire
from cqrs_outbox.core.escape import one_line

logger = logging.getLogger(__name__)

RETRIES_HEADER = "cqrs-retries"
EXPIRES_HEADER = "cqrs-expires"


def headers_of(properties: Any) -> dict:
    """Return a delivery's headers (an empty dict when it has none)."""
    return getattr(properties, "headers", None) or {}


def is_signed(properties: Any) -> bool:
    """Tell whether a delivery carries a signature header."""
    return primitives.HEADER in headers_of(properties)


class Gate:
    """Check each event against the policy; count what 'warn' let through."""

    def __init__(self, settings: conf.Settings) -> None:
        self.policy = settings.replica.signatures
        self.verifier = signing.verifier(settings)
        self.warned = 0  # events applied under 'warn' despite their signature

    def refusal(self, label: str, envelope: wire.Envelope, properties: Any,
                body: bytes) -> str | None:
        """Return the reason to dead-letter the event, or None to go on applying it."""
        if self.verifier is None:
            return None
        header = headers_of(properties).get(primitives.HEADER)
        reason = self.verifier.refusal(envelope.cqrs_id, body, header)
        if reason is None or self.policy == conf.SIGNATURES_REQUIRE:
            return reason
        self.warned += 1
        logger.warning("Applying %s %s:%s despite its signature: %s (%s such events so far)",
                       one_line(label), one_line(envelope.cqrs_id, 200),
                       one_line(envelope.instance_pk, 200), reason, self.warned)
        return None


def from_headers(properties: Any, envelope: wire.Envelope) -> wire.Envelope:
    """Return the envelope with `retries` and `expires` the headers carry for a signed body."""
    headers = headers_of(properties)
    if primitives.HEADER not in headers:
        return envelope
    changes: dict[str, Any] = {}
    retries = headers.get(RETRIES_HEADER)
    if isinstance(retries, int) and retries > envelope.retries:
        changes["retries"] = retries
    if isinstance(headers.get(EXPIRES_HEADER), str):
        changes["expires"] = headers[EXPIRES_HEADER]
    return dataclasses.replace(envelope, **changes) if changes else envelope


def reset_for_retry(headers: dict, body: bytes, message_ttl: int) -> tuple[dict, bytes] | None:
    """Return (headers, body) of a signed dead letter sent back, or None if it is unsigned.

    The body stays as signed; `retries` restarts at 0 and a body with an `expires` gets a
    fresh one, both in headers.
    """
    if primitives.HEADER not in headers:
        return None
    headers = {k: v for k, v in headers.items() if k not in (RETRIES_HEADER, EXPIRES_HEADER)}
    if wire.has_expiry(body):
        headers[EXPIRES_HEADER] = wire.expires_after(timezone.now(), message_ttl)
    return headers, body
