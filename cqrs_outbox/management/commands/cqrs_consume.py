"""Start the replica workers: `manage.py cqrs_consume -w 2 --cqrs-id author`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import consumer, workers
from relay.exceptions import ConfigurationError


class Command(BaseCommand):
    help = "Consume CQRS events from the replica queue and apply them to the replica models."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", "-w", type=int, default=1, help="Worker processes.")
        parser.add_argument(
            "--cqrs-id", "-cid", dest="cqrs_ids", action="extend", nargs="+", default=[],
            metavar="CQRS_ID", help="Bind only these replica models (repeatable).",
        )
        parser.add_argument("--batch-size", type=int, default=None,
                            help="Events per transaction (default CQRS['replica']['batch_size']).")

    def handle(self, *args: Any, workers: int = 1, cqrs_ids: list | None = None,
               batch_size: int | None = None, **options: Any) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        unknown = [c for c in cqrs_ids or [] if ReplicaRegistry.get_model_by_cqrs_id(c) is None]
        if unknown:
            known = ", ".join(sorted(ReplicaRegistry.models)) or "none"
            raise CommandError(f"Unknown CQRS ID: {', '.join(unknown)}. Replica models: {known}.")
        if not ReplicaRegistry.models:
            raise CommandError("This project has no replica models to consume for.")
        try:
            workers_target = _target(cqrs_ids or None, batch_size)
            workers_module_run(workers, workers_target)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc


def _target(cqrs_ids: list | None, batch_size: int | None) -> Any:
    def run() -> None:
        worker = consumer.Consumer(cqrs_ids=cqrs_ids, batch_size=batch_size)
        worker.install_signal_handlers()
        worker.run()

    return run


workers_module_run = workers.run
