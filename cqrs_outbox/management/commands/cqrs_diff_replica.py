"""Middle of the changed-rows diff: pass on the keys the replica lacks or holds stale."""

from cqrs_outbox import conf
from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs, dumps


class Command(_common.CQRSCommand):
    help = "Read cqrs_diff_master's stream on stdin; write the keys this replica must resync."

    def run(self, options):
        stream = self.input_stream(options)
        first = dumps.read_header(stream, "stdin")
        model = _common.model_or_error(self, "replica", diffs.header_cqrs_id(first))
        queue = conf.get().queue
        self.stdout.write(f"{first},{queue or diffs.NO_QUEUE}")
        result = diffs.replica_changes(model, stream, self.stdout, queue, self._report)
        self.report(options, f"{result.found} of {result.seen} row(s) to resync.")

    def _report(self, pks):
        self.stderr.write(f"PK to resync: {set(pks)}", style_func=str)  # django-cqrs's line
