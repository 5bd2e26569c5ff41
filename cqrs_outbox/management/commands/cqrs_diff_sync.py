"""End of the changed-rows diff: write SYNC events for the listed keys into the outbox."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs, dumps, sync


class Command(_common.CQRSCommand):
    help = (
        "Read cqrs_diff_replica's stream on stdin; write SYNC events for those rows into "
        "the outbox, aimed at the replica's queue."
    )

    def add_arguments(self, parser):
        _common.add_batch(parser)
        _common.add_progress(parser)

    def run(self, options):
        stream = self.input_stream(options)
        first = dumps.read_header(stream, "stdin")
        model = sync.master_model(diffs.header_cqrs_id(first))
        queue = diffs.header_queue(first)
        with self.progress_bar(options, lambda: None) as bar:
            result = diffs.sync_changes(model, stream, queue, options["batch"], bar)
        _common.finish_sync(self, options, result, queue)
