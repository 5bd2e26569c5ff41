"""Broker and database URL helpers shared by the relay and the Django app.

Passwords are found on the raw text, never through a URL parser: a password holding an
unencoded `#`, `?`, `/` or `@` makes parsers see a fragment, a query or a path where the
password is, and print it back. Here the user part is everything between `scheme://`
and the last `@`, so a malformed URL is masked too (if anything, too much of it).

`redact()` is the one function every printed URL goes through. It masks the password of
a URL's user part, `password=` and `sslpassword=` parameters (libpq reads both from a
URL's query string and from a keyword string such as `host=db password=... dbname=app`),
and does so for lists of URLs and for free text quoting any of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable

AMQP_SCHEMES = ("amqp", "amqps")
DEFAULT_AMQP_PORTS = {"amqp": 5672, "amqps": 5671}
MASK = "***"
# A URL inside free text: a scheme, `://`, and everything up to white space (a password
# may hold quotes and brackets; whatever else is taken along is masked at worst).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_STARTS_AS_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Where one URL of a list written as one string ends and the next begins.
_NEXT_URL = re.compile(r"[\s,]+(?=amqps?://)")
_NEXT_URL_KEPT = re.compile(r"([\s,]+)(?=(?:amqps?|postgres(?:ql)?|mysql|sqlite)://)")
# `password=` and `sslpassword=`, as a query parameter or a libpq keyword (`key = value`,
# the value maybe quoted with backslash escapes), and as a key of a dict's repr or JSON.
_SECRET_PARAM = re.compile(
    r"(?P<key>\b(?:ssl)?password(?:\s*=\s*|['\"]?\s*:\s*))"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&]*)",
    re.IGNORECASE,
)
# Pieces of a password this long or longer are masked wherever they appear in a text.
MIN_SECRET_PIECE = 4  # characters

# The query parameters a broker URL may carry, and what each takes. These are applied
# to the connection (cqrs_outbox.core.amqp); any other parameter is refused by name.
INT_OPTIONS = ("heartbeat", "connection_attempts", "channel_max", "frame_max")
SECONDS_OPTIONS = ("retry_delay", "socket_timeout", "stack_timeout", "blocked_connection_timeout")
TLS_OPTIONS = ("cacertfile", "certfile", "keyfile", "verify", "server_name_indication")
TEXT_OPTIONS = ("locale",)
BROKER_OPTIONS = (*INT_OPTIONS, *SECONDS_OPTIONS, *TEXT_OPTIONS, *TLS_OPTIONS)
VERIFY_CHOICES = ("verify_peer", "verify_none")


@dataclass(frozen=True)
class BrokerAddress:
    """One broker node of a parsed AMQP URL, with the URL's query parameters."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    vhost: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        """Return the URL with its password, for connecting."""
        return self._format(quote(self.password, safe=""))

    @property
    def safe_url(self) -> str:
        """Return the URL with the password masked, for logs and errors."""
        return self._format(MASK if self.password else "")

    def option(self, name: str) -> str | None:
        """Return the value of query parameter `name`, or None."""
        return dict(self.options).get(name)

    def _format(self, password: str) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + password
        vhost = quote(self.vhost, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?{urlencode(self.options)}" if self.options else ""
        return f"{self.scheme}://{auth}@{host}:{self.port}/{vhost}{query}"


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


# -- redaction ----------------------------------------------------------------------------


def redact(value: str | Sequence[str] | None) -> str:
    """Return `value` with every password masked as `***`.

    `value` is a URL, several URLs (a list, joined with ", ", or one string), a libpq
    keyword string, or any text quoting those.
    """
    if not value:
        return ""
    if not isinstance(value, str):
        return ", ".join(redact(str(item)) for item in value)
    # Parameters first: a `@` in a query password must not pass for the user part's end.
    value = _SECRET_PARAM.sub(lambda match: match.group("key") + MASK, value)
    if _STARTS_AS_URL.match(value):
        # Each URL whole, up to where the next begins: its password may hold anything.
        pieces = _NEXT_URL_KEPT.split(value)
        return "".join(p if i % 2 else _redact_url(p) for i, p in enumerate(pieces))
    return _URL_IN_TEXT.sub(lambda match: _redact_url(match.group()), value)


# The name callers of free text used before `redact` took any text.
redact_text = redact


def _redact_url(url: str) -> str:
    parts = _split(url)
    if parts is None or parts.password is None:
        return url
    return f"{parts.scheme}://{parts.user}:{MASK}@{parts.rest}"


def password_of(url: str | None) -> str | None:
    """Return the password a URL carries (user part or `password=`), decoded, or None."""
    found = sorted(_passwords(url or ""), key=len, reverse=True)
    return unquote(found[0]) if found else None


def _passwords(text: str) -> set[str]:
    """Return the raw passwords `text` holds: a URL's user part and `password=` values."""
    found = set()
    parts = _split(text) if _STARTS_AS_URL.match(text) else None
    if parts is not None and parts.password:
        found.add(parts.password)
    for match in _SECRET_PARAM.finditer(text):
        value = match.group("value")
        if len(value) > 1 and value[0] in "'\"":
            value = value[1:-1] if value[-1] == value[0] else value[1:]
        if value:
            found.add(value)
    return found


def scrub(text: str, *urls: str | None) -> str:
    """Mask in `text` the passwords of `urls`, their raw and decoded forms and long pieces.

    A driver that misreads a malformed URL may quote a piece of the password as a host,
    a port or a database name; those pieces go too.
    """
    text = redact(text)
    for url in urls:
        secrets: set[str] = set()
        for raw in _passwords(url or ""):
            secrets |= {raw, unquote(raw)}
        for secret in list(secrets):
            secrets.update(p for p in re.split(r"[/#?@:&=;]", secret) if len(p) >= MIN_SECRET_PIECE)
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
    return text


# -- broker URLs --------------------------------------------------------------------------


def parse_broker_urls(value: object, setting: str = "url") -> tuple[BrokerAddress, ...]:
    """Parse broker URLs; raise ConfigurationError naming `setting`.

    `value` is one URL, several in one string (separated by commas or white space), or a
    list of them; each URL may name several nodes (`amqp://u:p@h1:5672,h2:5672/vhost`).
    Return one address per node, in the order given.
    """
    if isinstance(value, str) and value.strip():
        urls = _NEXT_URL.split(value.strip())
    elif isinstance(value, (list, tuple)) and value and all(
        isinstance(item, str) and item.strip() for item in value
    ):
        urls = [url for item in value for url in _NEXT_URL.split(item.strip())]
    else:
        raise ConfigurationError(
            f"{setting}: expected an amqp:// or amqps:// URL, or a list of them, got "
            f"{redact(repr(value))}"
        )
    return tuple(address for url in urls for address in _parse(url, setting))


def parse_broker_url(url: str, setting: str = "url") -> BrokerAddress:
    """Parse an `amqp://` or `amqps://` URL of one node; raise ConfigurationError naming
    `setting`.

    The user and password are read from the raw text (see the module's docstring), so a
    password with an unencoded `#`, `?` or `/` works as written.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{setting}: expected an amqp:// or amqps:// URL, got {url!r}")
    addresses = _parse(url, setting)
    if len(addresses) > 1:
        raise ConfigurationError(f"{setting}: expected the URL of one node, got {redact(url)}")
    return addresses[0]


def safe_urls(addresses: Sequence[BrokerAddress]) -> str:
    """Return the addresses as URLs with their passwords masked, joined with ", "."""
    return ", ".join(address.safe_url for address in addresses)


def _parse(url: str, setting: str) -> list[BrokerAddress]:
    raw = _split(url)
    if raw is None or raw.scheme not in AMQP_SCHEMES:
        scheme = raw.scheme if raw else ""
        raise ConfigurationError(
            f"{setting}: scheme must be amqp or amqps, got {scheme or 'none'!r}"
            f" in {redact(url)}"
        )
    netloc, path, query = _cut(raw.rest)
    vhost = unquote(path) if path else "/"
    options = _options(query, raw.scheme, setting, url)
    user = unquote(raw.user or "guest")
    password = unquote(raw.password or "guest") if raw.user else "guest"
    return [
        BrokerAddress(raw.scheme, host, port, user, password, vhost, options)
        for host, port in (_host(node, raw.scheme, setting, url) for node in netloc.split(","))
    ]


def _cut(rest: str) -> tuple[str, str, str]:
    """Split `hosts/path?query` (what follows the user part) into its three pieces."""
    netloc, _, query = rest.partition("?")
    netloc, slash, path = netloc.partition("/")
    return netloc, path if slash else "", query


def _host(node: str, scheme: str, setting: str, url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(f"{scheme}://{node}")
        port = parts.port or DEFAULT_AMQP_PORTS[scheme]
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting}: bad host or port in {redact(url)}; write the host as host:port, "
            "[IPv6]:port, and percent-encode the password's special characters"
        ) from exc
    if not parts.hostname:
        raise ConfigurationError(f"{setting}: no host in {redact(url)}")
    return parts.hostname, port


def _options(query: str, scheme: str, setting: str, url: str) -> tuple[tuple[str, str], ...]:
    """Return the query parameters, each checked; refuse one we do not apply, by name."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigurationError(f"{setting}: bad query string in {redact(url)}") from exc
    for name, value in pairs:
        problem = option_problem(name, value, scheme)
        if problem:
            raise ConfigurationError(f"{setting}: {problem} (in {redact(url)})")
    return tuple(pairs)


def option_problem(name: str, value: str, scheme: str = "amqp") -> str:
    """Return what is wrong with broker URL parameter `name=value`, or ""."""
    if name not in BROKER_OPTIONS:
        return (f"query parameter {name!r} is not one the broker connection applies; use "
                f"{', '.join(BROKER_OPTIONS)}")
    if name in TLS_OPTIONS and scheme != "amqps":
        return f"query parameter {name!r} is a TLS option: use an amqps:// URL"
    least = 0 if name == "heartbeat" else 1  # a heartbeat of 0 turns heartbeats off
    if name in INT_OPTIONS and not (value.isdigit() and int(value) >= least):
        return f"query parameter {name!r} takes a whole number of at least {least}, got {value!r}"
    if name in SECONDS_OPTIONS and not _seconds(value):
        return f"query parameter {name!r} takes seconds (a number above 0), got {value!r}"
    if name == "verify" and value not in VERIFY_CHOICES:
        return f"query parameter 'verify' takes {' or '.join(VERIFY_CHOICES)}, got {value!r}"
    if name not in INT_OPTIONS + SECONDS_OPTIONS and not value:
        return f"query parameter {name!r} needs a value"
    return ""


def _seconds(value: str) -> bool:
    try:
        return 0 < float(value) < float("inf")
    except ValueError:
        return False


def describe(exc: BaseException, *secrets: str) -> str:
    """Return the first line of an error's message, with any URL password masked."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return scrub(text, *secrets)


def unreachable(url: str, exc: BaseException) -> DatabaseUnavailable:
    """Return the error for a database at `url` that could not be reached, no password in it."""
    return DatabaseUnavailable(f"cannot connect to {redact(url)}: {describe(exc, url)}")
