"""Manage the replica's dead letters: `manage.py cqrs_dead_letters retry|dump|purge`."""

from __future__ import annotations

from typing import Any

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import dead_letters


class Command(_common.CQRSCommand):
    help = "Retry, dump or purge the messages in the replica's dead-letter queue."

    def add_arguments(self, parser: Any) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        retry = commands.add_parser(
            "retry", help="Send every dead letter back to the replica queue; print their ids."
        )
        retry.add_argument("--verbose", action="store_true",
                           help="Also print each body that is sent back.")
        dump = commands.add_parser("dump", help="Print every dead letter, leaving it queued.")
        dump.add_argument(
            "--with-reasons",
            action="store_true",
            help="Print JSON objects with the reason and the body.",
        )
        commands.add_parser("purge", help="Delete every dead letter.")

    def run(self, options: dict) -> None:
        write = self.stdout.write
        if options["command"] == "retry":
            dead_letters.retry(write, options.get("verbose", False))
        elif options["command"] == "dump":
            dead_letters.dump(write, options.get("with_reasons", False))
        else:
            dead_letters.purge(write)
