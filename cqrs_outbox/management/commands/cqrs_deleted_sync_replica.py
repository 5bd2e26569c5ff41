"""End of the deleted-rows diff: delete the replica rows the master no longer has."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs, dumps


class Command(_common.CQRSCommand):
    help = "Read cqrs_deleted_diff_master's stream on stdin; delete those replica rows."

    def run(self, options):
        stream = self.input_stream(options)
        cqrs_id = diffs.header_cqrs_id(dumps.read_header(stream, "stdin"))
        model = _common.model_or_error(self, "replica", cqrs_id)
        result = diffs.delete_missing(model, stream)
        self.report(options, f"Done: {result.found} stale row(s) deleted.")
