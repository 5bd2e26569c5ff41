"""Start the changed-rows diff: stream `[pk, revision]` of a master model's rows."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import diffs


class Command(_common.CQRSCommand):
    help = (
        "Streaming diff of a master model, the first step of "
        "cqrs_diff_master | cqrs_diff_replica | cqrs_diff_sync."
    )

    def add_arguments(self, parser):
        _common.add_cqrs_id(parser, "-cid", "master")
        _common.add_filter(parser)
        _common.add_batch(parser)
        _common.add_progress(parser)

    def run(self, options):
        model = _common.model_or_error(self, "master", options["cqrs_id"])
        qs = _common.filtered_or_error(model, options["filter"])
        with self.progress_bar(options, qs.count) as bar:
            result = diffs.master_revisions(qs, self.stdout, options["batch"], bar)
        if not result.seen:
            self.report(options, "No objects found for filter!")
