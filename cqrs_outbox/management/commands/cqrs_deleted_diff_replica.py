"""Start the deleted-rows diff: stream the primary keys a replica model holds."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs


class Command(_common.CQRSCommand):
    help = (
        "Streaming keys of a replica model, the first step of cqrs_deleted_diff_replica | "
        "cqrs_deleted_diff_master | cqrs_deleted_sync_replica."
    )

    def add_arguments(self, parser):
        _common.add_cqrs_id(parser, "-cid", "replica")
        _common.add_filter(parser)
        _common.add_batch(parser)
        _common.add_progress(parser)

    def run(self, options):
        model = _common.model_or_error(self, "replica", options["cqrs_id"])
        qs = _common.filtered_or_error(model, options["filter"])
        with self.progress_bar(options, qs.count) as bar:
            result = diffs.replica_keys(qs, self.stdout, options["batch"], bar)
        if not result.seen:
            self.report(options, "No objects found for filter!")
