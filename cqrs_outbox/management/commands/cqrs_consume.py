"""Start the replica workers: `manage.py cqrs_consume -w 2 --cqrs-id author`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cqrs_outbox import conf, startup
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import consumer, topology
from cqrs_outbox.replica import workers as worker_pool
from relay.exceptions import ConfigurationError


class Command(BaseCommand):
    help = "Consume CQRS events from the replica queue and apply them to the replica models."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", "-w", type=int, default=1, help="Worker processes.")
        parser.add_argument(
            "--cqrs-id",
            "-cid",
            dest="cqrs_ids",
            action="extend",
            nargs="+",
            default=[],
            metavar="CQRS_ID",
            help="Bind only these replica models (repeatable).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Events per transaction (default: CQRS['replica']['batch_size']).",
        )
        parser.add_argument(
            "--prefetch-count", type=int, default=None,
            help="Unacknowledged messages per worker (default: "
                 "CQRS['replica']['prefetch_count']).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, cqrs_ids, batch_size = options["workers"], options["cqrs_ids"], options["batch_size"]
        prefetch = options["prefetch_count"]
        if count < 1 or any(n is not None and n < 1 for n in (batch_size, prefetch)):
            raise CommandError("--workers, --batch-size and --prefetch-count must be at least 1.")
        _check_cqrs_ids(cqrs_ids)
        try:
            topology.names(conf.get())
            self.stdout.write(startup.consumer_line(count, batch_size, prefetch))
            self.stdout.flush()
            worker_pool.run(count, _target(cqrs_ids or None, batch_size, prefetch))
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc


def _check_cqrs_ids(cqrs_ids: list[str]) -> None:
    if not ReplicaRegistry.models:
        raise CommandError("This project has no replica models to consume for.")
    unknown = [c for c in cqrs_ids if ReplicaRegistry.get_model_by_cqrs_id(c) is None]
    if unknown:
        known = ", ".join(sorted(ReplicaRegistry.models))
        raise CommandError(f"Unknown CQRS ID: {', '.join(unknown)}. Replica models: {known}.")


def _target(cqrs_ids: list[str] | None, batch_size: int | None, prefetch: int | None) -> Any:
    def run() -> None:
        worker = consumer.Consumer(cqrs_ids, batch_size, prefetch)
        worker.install_signal_handlers()
        worker.run()

    return run
