"""Load a dump made by cqrs_bulk_dump (ours or django-cqrs's) into a replica model."""

import os

from django.core.management.base import CommandError
from django.db import DatabaseError

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import dumps

TRUE_WORDS = {"1", "true", "yes", "on", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "off", "n", "f", ""}


def flag(text):
    """Parse --clear's optional value (django-cqrs takes `--clear true`)."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


class Command(_common.CQRSCommand):
    help = "Bulk load of a dump into the replica model its first line names."

    def add_arguments(self, parser):
        parser.add_argument("--input", "-i", required=True, help="Dump file to read (- for stdin)")
        parser.add_argument(
            "--clear",
            "-c",
            type=flag,
            nargs="?",
            const=True,
            default=False,
            help="Delete the replica's rows first (--clear, or --clear true)",
        )
        _common.add_batch(parser)
        _common.add_progress(parser)

    def run(self, options):
        path = options["input"]
        if path == "-":
            self._load(self.input_stream(options), path, options)
            return
        if not os.path.exists(path):
            raise CommandError(f"File {path} doesn't exist!")
        with open(path, encoding="utf-8") as stream:
            self._load(stream, path, options)

    def _load(self, stream, source, options):
        cqrs_id = next(iter(stream), "").strip()
        if not cqrs_id:
            raise CommandError(f"File {source} is empty!")
        model = _common.model_or_error(self, "replica", cqrs_id)
        if options["clear"]:
            try:
                dumps.clear(model)
            except DatabaseError as exc:
                self.stderr.write(f"{type(exc).__name__}: {exc}")
                raise CommandError("Delete operation fails!") from exc
        with self.progress_bar(options, lambda: None) as bar:
            counts = dumps.load(model, stream, self.stderr, options["batch"], bar)
        if counts.failed:
            self.report(options, f"{counts.failed} line(s) not loaded.")
        self.report(options, f"Done!\n{counts.done} instance(s) loaded.")  # django-cqrs's
