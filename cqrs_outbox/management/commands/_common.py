"""What every cqrs_* command shares: the base class (errors, streams, progress) and options."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError

from cqrs_outbox.core import contract
from cqrs_outbox.core.errors import ConfigurationError, CQRSOutboxError
from cqrs_outbox.ops import progress, sync
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry

ERROR_EXIT = 1  # the exit status of a command that failed, whatever the error


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
    """The base of every cqrs_* command: one way from an error to an exit status.

    A subclass implements `run(options)`. What the next command in a pipe reads goes to
    stdout; what a person reads (progress, closing lines, hints) goes to stderr through
    `progress_bar()` and `report()`. An error of the library (`CQRSOutboxError`: bad
    settings, options or input, the database or the broker away) ends the command with
    its message as one line and exit status 1, as a `CommandError` raised by `run` does;
    so does output closed before the end (`| head`).
    """

    # Tests and callers may hand a stream instead of the process's stdin.
    stealth_options = ("stdin",)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.run(options)
        except CQRSOutboxError as exc:
            raise CommandError(str(exc), returncode=ERROR_EXIT) from exc
        except BrokenPipeError:
            # The reader of our output went away (`| head`): stop quietly. Pointing stdout
            # at /dev/null keeps the interpreter's final flush from failing again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandError("Output closed before the end.", returncode=ERROR_EXIT) from None

    def run(self, options: dict) -> None:
        """Do the command's work; raise CommandError or a CQRSOutboxError to fail."""
        raise NotImplementedError

    def input_stream(self, options: dict) -> TextIO:
        """Return the stream the command reads: the `stdin` option, else the process's."""
        return options.get("stdin") or sys.stdin

    @contextlib.contextmanager
    def progress_bar(
        self, options: dict, total: Callable[[], int | None]
    ) -> Iterator[progress.Progress | None]:
        """Give a progress line on stderr when a person watches it or `--progress` asks.

        It opens with django-cqrs's "Processing N records with batch size B" when the
        count is known. The line is finished when the block ends normally; None when
        nobody watches.
        """
        bar = None
        if progress.wanted(sys.stderr, forced=bool(options.get("progress"))):
            bar = progress.Progress(total(), stream=sys.stderr)
            if bar.total is not None and options.get("batch"):
                sys.stderr.write(f"Processing {bar.total} records with batch size "
                                 f"{options['batch']}\n")
        yield bar
        if bar is not None:
            bar.finish()

    def report(self, options: dict, text: str) -> None:
        """Write a closing line to stderr, so stdout stays clean for the next command."""
        if options.get("verbosity", 1) >= 1:
            # Plain: Django paints stderr red on a terminal, and this is no error.
            self.stderr.write(text, style_func=str)


def from_setting(section: str, key: str) -> str:
    """Return the help's default of an option that falls back to `CQRS[section][key]`,
    naming that setting and its own default."""
    from cqrs_outbox import conf

    value = conf.SECTION_KEYS[section][key].default
    shown = "none" if value is None else f"{value:g}" if isinstance(value, float) else value
    return f"default: CQRS['{section}']['{key}'], which is {shown} unless set"


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


def add_batch(parser: argparse.ArgumentParser, default: int = contract.DEFAULT_BATCH) -> None:
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
        raise CommandError(str(exc)) from exc


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
        raise CommandError(f"{len(result.failed)} row(s) failed to sync.", returncode=ERROR_EXIT)
