"""Dump every row of a master model, in the format django-cqrs's bulk load reads."""

import os

from django.core.management.base import CommandError

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import dumps


class Command(_common.CQRSCommand):
    help = "Bulk dump of a CQRS master model: the CQRS_ID, then one JSON row per line."

    def add_arguments(self, parser):
        _common.add_cqrs_id(parser, "-c", "master")
        parser.add_argument(
            "--output",
            "-o",
            default=None,
            help="File to write (- for stdout; default <cqrs_id>.dump)",
        )
        _common.add_batch(parser)
        _common.add_progress(parser)
        parser.add_argument("--force", "-f", action="store_true", help="Overwrite the file")

    def run(self, options):
        model = _common.model_or_error(self, "master", options["cqrs_id"])
        path = options["output"] or f"{model.CQRS_ID}.dump"
        if path != "-" and os.path.exists(path) and not options["force"]:
            self.stderr.write("Use --force to overwrite it.")
            raise CommandError(f"File {path} exists!")
        with self.progress_bar(options, model._default_manager.count) as bar:
            if path == "-":
                self.stdout.ending = ""  # the dump's own newlines, byte for byte
                counts = dumps.dump(model, self.stdout, self.stderr, options["batch"], bar)
            else:
                with open(path, "w", encoding="utf-8") as out:
                    counts = dumps.dump(model, out, self.stderr, options["batch"], bar)
        # django-cqrs's closing lines, which scripts read.
        self.report(options, f"Done!\n{counts.done} instance(s) saved.\n"
                             f"{counts.done + counts.failed} instance(s) processed.")
