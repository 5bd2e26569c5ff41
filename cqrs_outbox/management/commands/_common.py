"""What the sync, dump and diff commands share: options, streams, errors, progress."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError

from cqrs_outbox import progress
from cqrs_outbox.master import sync
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry
from relay.exceptions import ConfigurationError

DEFAULT_BATCH = 10000  # rows per batch, as django-cqrs


def positive_int(text: str) -> int:
    """Parse a batch size: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class CQRSCommand(BaseCommand):
    """A command that reports a bad option or input as one line and exit status 1."""

    # Tests and callers may hand a stream instead of the process's stdin.
    stealth_options = ("stdin",)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.run(options)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        except BrokenPipeError:
            # The reader of our output went away (`| head`): stop quietly. Pointing stdout
            # at /dev/null keeps the interpreter's final flush from failing again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandError("Output closed before the end.", returncode=1) from None

    def run(self, options: dict) -> None:
        """Do the command's work; raise ConfigurationError for bad options or input."""
        raise NotImplementedError

    def input_stream(self, options: dict) -> TextIO:
        """Return the stream the command reads: the `stdin` option, else the process's."""
        return options.get("stdin") or sys.stdin

    def bar(
        self, options: dict, total: Callable[[], int | None], label: str = "rows"
    ) -> progress.Progress | None:
        """Return a progress bar when a person watches stderr or `--progress` asks for one."""
        if not progress.wanted(sys.stderr, forced=bool(options.get("progress"))):
            return None
        return progress.Progress(total(), stream=sys.stderr, label=label)

    def report(self, options: dict, text: str) -> None:
        """Write a closing line to stderr, so stdout stays clean for the next command."""
        if options.get("verbosity", 1) >= 1:
            # Plain: Django paints stderr red on a terminal, and this is no error.
            self.stderr.write(text, style_func=str)


def add_cqrs_id(parser: argparse.ArgumentParser, short: str, kind: str) -> None:
    """Add `--cqrs-id` with django-cqrs's short form for this command."""
    parser.add_argument(
        "--cqrs-id", short, dest="cqrs_id", required=True, help=f"CQRS_ID of the {kind} model"
    )


def add_filter(parser: argparse.ArgumentParser) -> None:
    """Add `--filter/-f`: queryset lookups as a JSON object."""
    parser.add_argument(
        "--filter",
        "-f",
        default=None,
        help="Queryset lookups as a JSON object, e.g. '{\"id__in\": [1, 2]}'; {} means all rows",
    )


def add_batch(parser: argparse.ArgumentParser, default: int = DEFAULT_BATCH) -> None:
    """Add `--batch/-b`."""
    parser.add_argument(
        "--batch",
        "-b",
        type=positive_int,
        default=default,
        help=f"Rows per batch, each its own transaction (default {default})",
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    """Add `--progress/-p`; a terminal gets the bar without it."""
    parser.add_argument(
        "--progress",
        "-p",
        action="store_true",
        help="Report progress on stderr even when it is not a terminal",
    )


def model_or_error(command: BaseCommand, kind: str, cqrs_id: str) -> Any:
    """Return the `kind` ('master' or 'replica') model registered as `cqrs_id`.

    An unknown id fails with django-cqrs's line, "Wrong CQRS ID: <id>!"; the ids that
    would do go to stderr first.
    """
    registry = MasterRegistry if kind == "master" else ReplicaRegistry
    model = registry.get_model_by_cqrs_id(cqrs_id)
    if model is None:
        known = ", ".join(sorted(registry.models)) or "none"
        command.stderr.write(f"No {kind} model has CQRS_ID {cqrs_id!r}; {kind} models: {known}.")
        raise CommandError(f"Wrong CQRS ID: {cqrs_id}!")
    return model


def filtered_or_error(model: Any, text: str | None) -> Any:
    """Return the rows of `model` that `--filter` selects (all without it).

    A bad filter fails with django-cqrs's "Bad filter kwargs!", followed by what is wrong.
    """
    try:
        return sync.filtered(model, sync.parse_filter(text) or {})
    except ConfigurationError as exc:
        raise CommandError(f"Bad filter kwargs! {str(exc).removeprefix('Bad filter: ')}") from exc


def finish_sync(command: CQRSCommand, options: dict, result: Any, queue: str | None) -> None:
    """Print django-cqrs's closing lines of a sync on stdout and ours on stderr.

    A row whose sync failed gets django-cqrs's "Sync record failed for pk=..." line; the
    command then exits with status 1, after the others were synced.
    """
    for pk, why in result.failed:
        command.stdout.write(f"Sync record failed for pk={pk}: {why}")
    command.stdout.write(
        f"Done!\n{result.synced} instance(s) synced.\n{result.processed} instance(s) processed."
    )
    target = f"queue {queue}" if queue else "every replica"
    command.report(
        options,
        f"{result.synced} SYNC event(s) written to the outbox for {target}; "
        f"{result.skipped} row(s) skipped; {len(result.failed)} failed.",
    )
    if result.failed:
        raise CommandError(f"{len(result.failed)} row(s) failed to sync.", returncode=1)
