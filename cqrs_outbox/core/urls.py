"""Broker and database URL helpers shared by the relay and the Django app.

Passwords are found on the raw text, never through a URL parser: a password holding an
unencoded `#`, `?`, `/` or `@` makes parsers see a fragment, a query or a path where the
password is, and print it back. Here the user part is everything between `scheme://`
and the last `@`, so a malformed URL is masked too (if anything, too much of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from cqrs_outbox.core.errors import ConfigurationError

AMQP_SCHEMES = ("amqp", "amqps")
DEFAULT_AMQP_PORTS = {"amqp": 5672, "amqps": 5671}
MASK = "***"
# A URL inside free text: a scheme, `://`, and everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")
# Pieces of a password this long or longer are masked wherever they appear in a text.
MIN_SECRET_PIECE = 4  # characters


@dataclass(frozen=True)
class BrokerAddress:
    """A parsed AMQP URL."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    vhost: str

    @property
    def url(self) -> str:
        """Return the URL with its password, for connecting."""
        return self._format(quote(self.password, safe=""))

    @property
    def safe_url(self) -> str:
        """Return the URL with the password masked, for logs and errors."""
        return self._format(MASK if self.password else "")

    def _format(self, password: str) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + password
        vhost = quote(self.vhost, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}@{host}:{self.port}/{vhost}"


@dataclass(frozen=True)
class _RawParts:
    scheme: str
    user: str | None  # None when the URL has no `user@`
    password: str | None  # None when the user part has no `:`
    rest: str  # host, port, path and query: what follows the last `@`


def _split(url: str) -> _RawParts | None:
    """Split `scheme://user:password@rest` on the raw text; None if there is no `://`."""
    scheme, sep, after = url.partition("://")
    if not sep:
        return None
    auth, at, rest = after.rpartition("@")
    if not at:
        return _RawParts(scheme, None, None, after)
    user, colon, password = auth.partition(":")
    return _RawParts(scheme, user, password if colon else None, rest)


def redact(url: str | None) -> str:
    """Return `url` with any password replaced by `***`."""
    if not url:
        return ""
    parts = _split(url)
    if parts is None or parts.password is None:
        return url
    return f"{parts.scheme}://{parts.user}:{MASK}@{parts.rest}"


def redact_text(text: str) -> str:
    """Return `text` with the password of every URL in it masked."""
    return _URL_IN_TEXT.sub(lambda match: redact(match.group()), text)


def password_of(url: str | None) -> str | None:
    """Return the password a URL carries, decoded, or None."""
    parts = _split(url) if url else None
    if parts is None or not parts.password:
        return None
    return unquote(parts.password)


def scrub(text: str, *urls: str | None) -> str:
    """Mask in `text` the passwords of `urls`, their raw and decoded forms and long pieces.

    A driver that misreads a malformed URL may quote a piece of the password as a host,
    a port or a database name; those pieces go too.
    """
    text = redact_text(text)
    for url in urls:
        parts = _split(url) if url else None
        if parts is None or not parts.password:
            continue
        secrets = {parts.password, unquote(parts.password)}
        for secret in list(secrets):
            secrets.update(p for p in re.split(r"[/#?@:&=;]", secret) if len(p) >= MIN_SECRET_PIECE)
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
    return text


def parse_broker_url(url: str, setting: str = "url") -> BrokerAddress:
    """Parse an `amqp://` or `amqps://` URL; raise ConfigurationError naming `setting`.

    The user and password are read from the raw text (see the module's docstring), so a
    password with an unencoded `#`, `?` or `/` works as written.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{setting}: expected an amqp:// or amqps:// URL, got {url!r}")
    raw = _split(url)
    if raw is None or raw.scheme not in AMQP_SCHEMES:
        scheme = raw.scheme if raw else ""
        raise ConfigurationError(
            f"{setting}: scheme must be amqp or amqps, got {scheme or 'none'!r}"
            f" in {redact(url)}"
        )
    try:
        parts = urlsplit(f"{raw.scheme}://{raw.rest}")
        port = parts.port or DEFAULT_AMQP_PORTS[raw.scheme]
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting}: bad host or port in {redact(url)}; write the host as host:port, "
            "[IPv6]:port, and percent-encode the password's special characters"
        ) from exc
    if not parts.hostname:
        raise ConfigurationError(f"{setting}: no host in {redact(url)}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return BrokerAddress(
        scheme=raw.scheme,
        host=parts.hostname,
        port=port,
        user=unquote(raw.user or "guest"),
        password=unquote(raw.password or "guest") if raw.user else "guest",
        vhost=unquote(path) if path else "/",
    )
