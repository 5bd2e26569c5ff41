"""Broker and database URL helpers shared by the relay and the Django app."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from relay.exceptions import ConfigurationError

AMQP_SCHEMES = ("amqp", "amqps")
DEFAULT_AMQP_PORTS = {"amqp": 5672, "amqps": 5671}


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
        return self._format("***" if self.password else "")

    def _format(self, password: str) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + password
        vhost = quote(self.vhost, safe="")
        return f"{self.scheme}://{auth}@{self.host}:{self.port}/{vhost}"


def parse_broker_url(url: str, setting: str = "url") -> BrokerAddress:
    """Parse an `amqp://` or `amqps://` URL; raise ConfigurationError naming `setting`."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{setting}: expected an amqp:// or amqps:// URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in AMQP_SCHEMES:
        raise ConfigurationError(
            f"{setting}: scheme must be amqp or amqps, got {parts.scheme or 'none'!r}"
            f" in {redact(url)}"
        )
    try:
        port = parts.port or DEFAULT_AMQP_PORTS[parts.scheme]
    except ValueError as exc:
        raise ConfigurationError(f"{setting}: bad port in {redact(url)}") from exc
    if not parts.hostname:
        raise ConfigurationError(f"{setting}: no host in {redact(url)}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return BrokerAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest") if parts.username else "guest",
        vhost=unquote(path) if path else "/",
    )


def redact(url: str | None) -> str:
    """Return `url` with any password replaced by `***`."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()
