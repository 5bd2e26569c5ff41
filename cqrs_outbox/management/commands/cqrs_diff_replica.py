"""Middle of the changed-rows diff: pass on the keys the replica lacks or holds stale."""

from cqrs_outbox import conf, diffs, dumps, sync
from cqrs_outbox.management.commands import _common


class Command(_common.CQRSCommand):
    help = "Read cqrs_diff_master's stream on stdin; write the keys this replica must resync."

    def run(self, options):
        stream = self.input_stream(options)
        first = dumps.read_header(stream, "stdin")
        model = sync.replica_model(diffs.header_cqrs_id(first))
        queue = conf.get().queue
        self.stdout.write(f"{first},{queue or diffs.NO_QUEUE}")
        result = diffs.replica_changes(model, stream, self.stdout, queue)
        self.report(options, f"{result.found} of {result.seen} row(s) to resync.")
