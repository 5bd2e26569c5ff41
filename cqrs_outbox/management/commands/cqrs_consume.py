"""Start the replica workers: `manage.py cqrs_consume -w 2 --cqrs-id author`."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError

from cqrs_outbox import conf
from cqrs_outbox.core import pika_errors
from cqrs_outbox.management import startup
from cqrs_outbox.management.commands import _common
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import consumer, reloader, telemetry, topology, workers


class Command(_common.CQRSCommand):
    help = "Consume CQRS events from the replica queue and apply them to the replica models."

    def add_arguments(self, parser: Any) -> None:
        setting = _common.from_setting
        parser.add_argument("--workers", "-w", type=int, default=1,
                            help="Worker processes (default: %(default)s).")
        parser.add_argument(
            "--cqrs-id",
            "-cid",
            dest="cqrs_ids",
            action="extend",
            nargs="+",
            default=[],
            metavar="CQRS_ID",
            help="Bind only these replica models (repeatable; default: every replica model).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"Events per transaction ({setting('replica', 'batch_size')}).",
        )
        parser.add_argument(
            "--prefetch-count", type=int, default=None,
            help="Unacknowledged messages per worker "
                 f"({setting('replica', 'prefetch_count')}).",
        )
        parser.add_argument(
            "--reload", "-r", action="store_true", default=False,
            help="Restart the workers when a Python file they loaded changes (Django's "
                 "autoreloader), or on SIGHUP (default: off).",
        )
        parser.add_argument(
            "--ignore-paths", nargs="?", default=None,
            help="Directories whose changes --reload ignores, comma-separated, "
                 "e.g. \"env\" or \"env,node_modules\" (default: none).",
        )
        parser.add_argument(
            "--sigint-timeout", nargs="?", type=int, default=workers.DEFAULT_SIGINT_TIMEOUT,
            help="Seconds a stopping worker gets to finish before it is killed with SIGKILL "
                 "(default: %(default)s).",
        )
        parser.add_argument(
            "--sigkill-timeout", nargs="?", type=int,
            default=workers.DEFAULT_SIGKILL_TIMEOUT,
            help="Seconds to wait for a worker after SIGKILL (default: %(default)s).",
        )
        parser.add_argument(
            "--metrics-port", type=int, default=None,
            help="Serve /metrics, /healthz and /readyz of all workers on this port "
                 f"({setting('replica', 'metrics_port')}).",
        )
        parser.add_argument("--metrics-addr", default="127.0.0.1",
                            help="Address the metrics port listens on (default: %(default)s).")

    def run(self, options: dict) -> None:
        count, cqrs_ids, batch_size = options["workers"], options["cqrs_ids"], options["batch_size"]
        prefetch = options["prefetch_count"]
        if count < 1 or any(n is not None and n < 1 for n in (batch_size, prefetch)):
            raise CommandError("--workers, --batch-size and --prefetch-count must be at least 1.")
        timeouts = _timeouts(options)
        self._check_cqrs_ids(cqrs_ids)
        if options["verbosity"] < 3:
            pika_errors.quiet_pika()  # the consumer reports broker trouble itself, once
        topology.names(conf.get())
        if options["reload"] and not reloader.in_child():
            sys.exit(reloader.run_parent(timeouts))
        if options["reload"]:
            reloader.watch(reloader.ignored_paths(options["ignore_paths"]))
        consumer.console_logging()
        self.stdout.write(startup.consumer_line(count, batch_size, prefetch))
        self.stdout.flush()
        with telemetry.serving(_metrics_port(options), options["metrics_addr"]):
            workers.run(count, _target(cqrs_ids or None, batch_size, prefetch), timeouts)
        if workers.reload_requested.is_set():
            sys.exit(workers.RELOAD_EXIT)

    def _check_cqrs_ids(self, cqrs_ids: list[str]) -> None:
        if not ReplicaRegistry.models:
            raise CommandError("This project has no replica models to consume for.")
        unknown = [c for c in cqrs_ids if ReplicaRegistry.get_model_by_cqrs_id(c) is None]
        if unknown:
            # django-cqrs's line is the error; what would fix it goes to stderr first.
            known = ", ".join(sorted(ReplicaRegistry.models))
            self.stderr.write(f"Replica models: {known}.")
            raise CommandError(f"Wrong CQRS ID: {unknown[0]}!")


def _timeouts(options: dict) -> workers.StopTimeouts:
    sigint, sigkill = options["sigint_timeout"], options["sigkill_timeout"]
    if sigint is None or sigkill is None or sigint < 0 or sigkill < 0:
        raise CommandError("--sigint-timeout and --sigkill-timeout take a number of seconds, "
                           "0 or more.")
    return workers.StopTimeouts(sigint, sigkill)


def _metrics_port(options: dict) -> int | None:
    port = options["metrics_port"] or conf.get().replica.metrics_port
    if port is not None and not 0 < port < 65536:
        raise CommandError("--metrics-port must be a port number (1-65535).")
    return port


def _target(cqrs_ids: list[str] | None, batch_size: int | None,
            prefetch: int | None) -> workers.Target:
    def run(grace: float | None) -> None:
        worker = consumer.Consumer(cqrs_ids, batch_size, prefetch)
        workers.install_stop_handlers(worker.stop, grace)
        workers.tune_gc()
        worker.run()

    return run
