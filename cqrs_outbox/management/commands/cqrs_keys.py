"""Make and show event signing keys: `manage.py cqrs_keys generate|show`."""

from __future__ import annotations

from typing import Any

from cqrs_outbox.management.commands import _common
from cqrs_outbox.ops import keys


class Command(_common.CQRSCommand):
    help = "Generate an Ed25519 key pair for signed events, or print a public key."

    def add_arguments(self, parser: Any) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        generate = commands.add_parser(
            "generate", help="Write a private key file (mode 0600); print the settings."
        )
        generate.add_argument("--id", required=True, dest="key_id",
                              help="The key id replicas know the key by, e.g. orders-2026.")
        generate.add_argument("--out", default=None,
                              help="Where to write the private key (default: <id>.pem).")
        show = commands.add_parser(
            "show", help="Print the public key of the master's signing key or of --file."
        )
        show.add_argument("--file", default=None, help="A private key file to read instead.")

    def run(self, options: dict) -> None:
        if options["command"] == "generate":
            path = options["out"] or f"{options['key_id']}.pem"
            public = keys.generate(options["key_id"], path)
            self.stdout.write(f"Wrote private key {options['key_id']!r} to {path}")
            self.stdout.write(keys.snippet(options["key_id"], path, public))
        else:
            self.stdout.write(keys.show(options["file"]))
