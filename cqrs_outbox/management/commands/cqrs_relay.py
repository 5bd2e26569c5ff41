"""Run the relay on this project's database: `manage.py cqrs_relay [--once] [--status]`."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import CommandError
from django.db import connections

from cqrs_outbox import conf, drain, store
from cqrs_outbox.core import pika_errors, probes
from cqrs_outbox.management import startup
from cqrs_outbox.management.commands import _common
from cqrs_outbox.store import dbapi
from relay import metrics, status


def _observer(options: dict) -> metrics.Observer | None:
    port = options["metrics_port"] or conf.get().relay.metrics_port
    if port is None:
        return None
    if not 0 < port < 65536:
        raise CommandError("--metrics-port must be a port number (1-65535).")
    observer, _ = metrics.serve_relay(port, options["metrics_addr"], options["database"])
    return observer


class Command(_common.CQRSCommand):
    help = "Publish the outbox's pending events to RabbitMQ, in order, with confirms."

    def add_arguments(self, parser: Any) -> None:
        setting = _common.from_setting
        parser.add_argument("--once", action="store_true",
                            help="Stop when nothing is pending instead of waiting.")
        parser.add_argument("--seconds", type=float, default=None,
                            help="Stop after this many seconds (default: run until stopped).")
        parser.add_argument("--batch-size", type=int, default=None,
                            help=f"Events per batch ({setting('relay', 'batch_size')}).")
        parser.add_argument("--poll-interval", type=float, default=None,
                            help=f"Seconds between polls ({setting('relay', 'poll_interval')}).")
        parser.add_argument("--lease-ttl", type=float, default=None,
                            help=f"Seconds a partition lease lasts "
                                 f"({setting('relay', 'lease_ttl')}).")
        parser.add_argument("--no-listen", action="store_true",
                            help="Poll only; do not LISTEN for notifications (PgBouncer). "
                                 "Default: LISTEN on PostgreSQL.")
        parser.add_argument("--database", default="default",
                            help="Database alias whose outbox to drain (default: %(default)s).")
        parser.add_argument("--status", action="store_true",
                            help="Print pending, failed and returned (unroutable) counts, "
                                 "the oldest pending age and partition owners, then exit.")
        parser.add_argument("--metrics-port", type=int, default=None,
                            help="Serve /metrics, /healthz and /readyz on this port "
                                 f"({setting('relay', 'metrics_port')}).")
        parser.add_argument("--metrics-addr", default=probes.DEFAULT_ADDR,
                            help="Address the metrics port listens on (default: %(default)s).")

    def run(self, options: dict) -> None:
        if options["status"]:
            self._status(options["database"])
        else:
            self._run(options)

    def _status(self, database: str) -> None:
        with dbapi.translated():
            summary = store.summary(store.wrap(connections[database]))
        self.stdout.write(f"database: {database}")
        self.stdout.write(status.render(summary))
        from cqrs_outbox.master import outside

        if outside.enabled():
            self.stdout.write(f"captured outside the ORM, not yet events: "
                              f"{outside.waiting(database)}")

    def _run(self, options: dict) -> None:
        for name in ("batch_size", "poll_interval", "lease_ttl", "seconds"):
            if options[name] is not None and options[name] <= 0:
                raise CommandError(f"--{name.replace('_', '-')} must be positive.")
        if options["verbosity"] < 3:
            pika_errors.quiet_pika()
        relay = drain.build_relay(
            options["database"],
            _observer(options),
            batch_size=options["batch_size"],
            poll_interval=options["poll_interval"],
            lease_ttl=options["lease_ttl"],
            listen=False if options["no_listen"] else None,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: relay.stop())
        relay.start()
        self.stdout.write(startup.relay_line(relay, options["database"]))
        self.stdout.flush()
        stats = relay.run(once=options["once"], seconds=options["seconds"])
        self.stdout.write(
            f"published {stats.published}, returned {stats.returned}, "
            f"failed {stats.failed}, purged {stats.purged}"
        )
