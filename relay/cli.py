"""`python -m relay`: run the relay without the master's code, from two URLs.

    python -m relay --database-url postgresql://user:pw@db/app --broker-url amqp://...

The URLs may come from RELAY_DATABASE_URL and RELAY_BROKER_URL instead, which keeps
passwords out of the process list. A cluster's nodes are given by repeating
`--broker-url`, by several URLs in one value, or by one URL naming several hosts
(`amqp://user:pw@node1:5672,node2:5672/vhost`); they are tried in turn.
Errors are one line on stderr with a non-zero exit status (2 for bad usage or
configuration, 1 for a database unreachable at start or a login the broker refuses);
SIGTERM and SIGINT stop the relay cleanly with status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cqrs_outbox import store
from cqrs_outbox.core import contract, pika_errors, probes
from cqrs_outbox.core.errors import AccessRefused, ConfigurationError, DatabaseUnavailable
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.core.urls import parse_broker_urls, redact, safe_urls
from cqrs_outbox.store import dbapi, postgresql
from relay import engine, metrics, pika_publisher, status

PROG = "relay"
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with any URL password masked."""

    def error(self, message: str) -> NoReturn:
        fail(message, EXIT_USAGE)


def fail(message: str, code: int) -> NoReturn:
    """Print a one-line error (passwords masked) and exit with `code`."""
    print(f"{PROG}: error: {one_line(redact(message))}", file=sys.stderr)
    sys.exit(code)


DATABASE_ENV = "RELAY_DATABASE_URL"
BROKER_ENV = "RELAY_BROKER_URL"


def parser() -> argparse.ArgumentParser:
    """Return the command-line parser; each option's help gives its default and the
    environment variable it falls back to, if any."""
    d = engine.Config()
    p = _Parser(prog=f"python -m {PROG}", description="Drain the CQRS outbox to RabbitMQ.")
    # The URL's default comes from the environment, but is never shown: it holds a password.
    p.add_argument("--database-url", default=os.environ.get(DATABASE_ENV),
                   help="postgresql://user:password@host:port/name, "
                        "mysql://user:password@host:port/name or sqlite:///path "
                        f"(default: ${DATABASE_ENV}; required one way or the other)")
    p.add_argument("--broker-url", action="append", default=None,
                   help="amqp://user:password@host:port/vhost (or amqps://); repeat it, or "
                        "name several hosts (amqp://u:p@h1:5672,h2:5672/vhost), for a "
                        f"cluster's nodes (default: ${BROKER_ENV}; required one way or the "
                        "other)")
    p.add_argument("--driver", choices=list(postgresql.DRIVERS), default=None,
                   help="PostgreSQL driver module (default: psycopg if installed, else "
                        "psycopg2)")
    p.add_argument("--exchange", default=contract.DEFAULT_EXCHANGE,
                   help="topic exchange to publish to (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="events per batch (default: %(default)s)")
    p.add_argument("--poll-interval", type=float, default=d.poll_interval,
                   help="seconds between polls when no notification arrives (without "
                        "LISTEN, the longest pause an idle relay's polls back off to; "
                        "default: %(default)s)")
    p.add_argument("--lease-ttl", type=float, default=d.lease_ttl,
                   help="seconds a partition lease lasts unless renewed (default: %(default)s)")
    p.add_argument("--max-attempts", type=int, default=d.max_attempts,
                   help="broker refusals of an event before it is marked failed "
                        "(default: %(default)s)")
    p.add_argument("--retention", type=float, default=d.retention,
                   help="seconds published events are kept before they are purged "
                        "(default: %(default)s, 7 days)")
    p.add_argument("--purge-batch-size", type=int, default=d.purge_batch_size,
                   help="events per purge statement (default: %(default)s)")
    p.add_argument("--no-listen", action="store_true",
                   help="poll only (e.g. behind PgBouncer in transaction mode; default: "
                        "LISTEN on PostgreSQL)")
    p.add_argument("--owner", default="",
                   help="this relay's name in the lease table (default: host name and pid)")
    p.add_argument("--once", action="store_true", help="stop when nothing is pending")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this long (default: run until stopped)")
    p.add_argument("--status", action="store_true", help="print the outbox status and exit")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve /metrics, /healthz and /readyz on this port (default: none)")
    p.add_argument("--metrics-addr", default=probes.DEFAULT_ADDR,
                   help="address the metrics port listens on (default: %(default)s)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="(default: %(default)s)")
    return p


def config(args: argparse.Namespace) -> engine.Config:
    """Return the engine configuration the arguments ask for."""
    for name in ("batch_size", "max_attempts", "purge_batch_size"):
        if getattr(args, name) < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("poll_interval", "lease_ttl"):
        if getattr(args, name) <= 0:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be positive")
    return engine.Config(
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        lease_ttl=args.lease_ttl,
        max_attempts=args.max_attempts,
        retention=args.retention,
        purge_batch_size=args.purge_batch_size,
        listen=not args.no_listen,
        owner=args.owner,
    )


class _Connector:
    """Hand out the connection opened at start first, then fresh ones after outages."""

    def __init__(self, url: str, driver: str | None = None) -> None:
        self.url = url
        self.driver = driver
        self.first: dbapi.Database | None = store.connect(url, driver)
        self.driver_name = store.driver_version(self.first.driver)

    def __call__(self) -> dbapi.Database:
        db, self.first = self.first, None
        return db or store.connect(self.url, self.driver)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay (or print the status); return the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    if args.log_level != "DEBUG":
        pika_errors.quiet_pika()
    try:
        return _run(args)
    except AccessRefused as exc:  # the broker is there; the credentials are wrong
        fail(str(exc), EXIT_UNAVAILABLE)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def _run(args: argparse.Namespace) -> int:
    if not args.database_url:
        raise ConfigurationError(f"--database-url is required (or set {DATABASE_ENV})")
    if args.status:
        with dbapi.translated():
            summary = store.summary(store.connect(args.database_url, args.driver))
        print(f"database: {redact(args.database_url)}")
        print(status.render(summary))
        return 0
    brokers = args.broker_url or os.environ.get(BROKER_ENV)
    if not brokers:
        raise ConfigurationError(f"--broker-url is required (or set {BROKER_ENV})")
    addresses = parse_broker_urls(brokers, "--broker-url")
    settings = config(args)
    publisher = pika_publisher.PikaPublisher(addresses, args.exchange)
    observer = _metrics(args)
    connector = _Connector(args.database_url, args.driver)
    relay = engine.Relay(connector, publisher, settings, observer=observer)
    _on_signals(relay)
    relay.start()
    logging.getLogger(__name__).info(
        "relay %s: database %s (%s), broker %s, exchange %s, batch %s",
        relay.owner, redact(args.database_url), connector.driver_name, safe_urls(addresses),
        args.exchange, settings.batch_size,
    )
    relay.run(once=args.once, seconds=args.seconds)
    return 0


def _metrics(args: argparse.Namespace) -> metrics.Observer | None:
    if args.metrics_port is None:
        return None
    if not 0 < args.metrics_port < 65536:
        raise ConfigurationError("--metrics-port must be a port number (1-65535)")
    name = store.database_name(args.database_url)
    observer, _ = metrics.serve_relay(args.metrics_port, args.metrics_addr, name)
    return observer


def _on_signals(relay: engine.Relay) -> None:
    def stop(signum: int, frame: Any) -> None:
        relay.stop()  # only rings the relay's alarm: safe inside a signal handler

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
