"""Middle of the deleted-rows diff: pass on the replica's keys the master no longer has."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs, dumps


class Command(_common.CQRSCommand):
    help = "Read cqrs_deleted_diff_replica's stream on stdin; write the keys gone from the master."

    def run(self, options):
        stream = self.input_stream(options)
        first = dumps.read_header(stream, "stdin")
        model = _common.model_or_error(self, "master", diffs.header_cqrs_id(first))
        self.stdout.write(first)
        result = diffs.master_missing(model, stream, self.stdout, self._report)
        self.report(options, f"{result.found} of {result.seen} row(s) gone from the master.")

    def _report(self, pks):
        self.stderr.write(f"PK to delete: {pks}", style_func=str)  # django-cqrs's line
