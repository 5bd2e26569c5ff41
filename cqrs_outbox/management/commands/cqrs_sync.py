"""Write SYNC events for the filtered rows of a master model into the outbox."""

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import sync


class Command(_common.CQRSCommand):
    help = (
        "Resend filtered rows of a master model: write their SYNC events into the outbox, "
        "in batches of one transaction each, for every replica or only for --queue."
    )

    def add_arguments(self, parser):
        _common.add_cqrs_id(parser, "-cid", "master")
        _common.add_filter(parser)
        parser.add_argument(
            "--queue", "-q", default=None, help="Send only to this replica queue (default: all)"
        )
        parser.add_argument(
            "--repair", action="store_true",
            help="Mark the SYNCs as repairs: replicas take them whatever the revision or "
            "tombstone they hold (a row frozen by a forged or restored revision)",
        )
        _common.add_batch(parser)
        _common.add_progress(parser)

    def run(self, options):
        model = sync.master_model(options["cqrs_id"])
        kwargs = sync.parse_filter(options["filter"])
        if kwargs is None:
            # django-cqrs selects no rows without a filter, and says so in these words.
            self.stdout.write("No objects found for filter!")
            self.report(options, "No filter given: -f '{}' selects every row.")
            return
        qs = sync.filtered(model, kwargs)
        if not qs.exists():
            self.stdout.write("No objects found for filter!")
            return
        with self.progress_bar(options, qs.count) as bar:
            result = sync.sync_queryset(qs, options["queue"], options["batch"], bar,
                                        repair=options["repair"])
        _common.finish_sync(self, options, result, options["queue"])
