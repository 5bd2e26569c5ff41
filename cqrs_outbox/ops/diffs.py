"""The diff streams between a master and a replica, in django-cqrs's line format.

Repairing lost or stale rows is a pipeline of three commands, alternately on the
master and on the replica:

    cqrs_diff_master -c ID | cqrs_diff_replica | cqrs_diff_sync
    cqrs_deleted_diff_replica -c ID | cqrs_deleted_diff_master | cqrs_deleted_sync_replica

Every stream starts with a header line `<cqrs_id>,<time>` (the replica adds
`,<queue>` to the changed-rows stream); each further line is a JSON list: of
`[pk, revision]` pairs from the master, then of primary keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from django.db import models, router, transaction
from django.utils import timezone

from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.ops import progress, sync

logger = logging.getLogger(__name__)

NO_QUEUE = "None"  # what a replica without a queue setting writes, as django-cqrs


@dataclass(frozen=True)
class DiffResult:
    """How many keys a step looked at, and how many it passed on (or acted on)."""

    seen: int
    found: int


def header(cqrs_id: str) -> str:
    """Return the first line of a stream started now."""
    return f"{cqrs_id},{timezone.now()}"


def header_cqrs_id(line: str) -> str:
    """Return the CQRS_ID named by a stream's first line."""
    return line.strip().split(",")[0]


def header_queue(line: str) -> str | None:
    """Return the replica queue named by the last field of a header, or None."""
    queue = line.strip().split(",")[-1]
    return None if queue == NO_QUEUE else queue


def packages(lines: Iterable[str]) -> Iterator[list]:
    """Yield the JSON lists of a stream's lines after the header; blank lines are skipped."""
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            package = json.loads(line)
        except ValueError as exc:
            raise ConfigurationError(f"Line {number} of the input is not JSON: {exc}.") from exc
        if not isinstance(package, list):
            raise ConfigurationError(f"Line {number} of the input is not a JSON list.")
        yield package


def _write(out: TextIO, package: list) -> None:
    out.write(wire.dumps(package) + "\n")


def master_revisions(
    qs: models.QuerySet, out: TextIO, batch: int, bar: progress.Progress | None = None
) -> DiffResult:
    """Write `[pk, revision]` of each row the master would publish, a line per batch."""
    out.write(header(qs.model.CQRS_ID) + "\n")
    seen = found = 0
    for rows in sync.batches(qs, batch):
        package = [
            [wire.json_value(row.pk), row.cqrs_revision]
            for row in rows
            if row.is_sync_instance()
        ]
        seen, found = seen + len(rows), found + len(package)
        if package:
            _write(out, package)
        if bar is not None:
            bar.advance(len(rows))
    return DiffResult(seen, found)


def replica_changes(
    model: type[models.Model], lines: Iterable[str], out: TextIO, queue: str | None,
    report: Callable[[list], None] | None = None,
) -> DiffResult:
    """Pass on the master's keys whose revision the replica lacks or holds differently.

    `report` is called with each line's keys passed on.
    """
    seen = found = 0
    alias = router.db_for_read(model)
    for package in packages(lines):
        master = {str(pk): (pk, revision) for pk, revision in package}
        held = (
            model._default_manager.using(alias)
            .filter(pk__in=[pk for pk, _ in master.values()])
            .order_by()
            .values_list("pk", "cqrs_revision")
        )
        replica = {str(pk): revision for pk, revision in held}
        changed = [pk for key, (pk, rev) in master.items() if replica.get(key) != rev]
        seen, found = seen + len(master), found + len(changed)
        if changed:
            _write(out, changed)
            if report is not None:
                report(changed)
    return DiffResult(seen, found)


def sync_changes(
    model: type[models.Model],
    lines: Iterable[str],
    queue: str | None,
    batch: int,
    bar: progress.Progress | None = None,
) -> sync.SyncResult:
    """Write SYNC events into the outbox for the keys of each line, to `queue` or all."""
    total = sync.SyncResult(0, 0)
    alias = router.db_for_write(model)
    for pks in packages(lines):
        qs = model._default_manager.using(alias).filter(pk__in=pks)
        total += sync.sync_queryset(qs, queue=queue, batch=batch)
        if bar is not None:
            bar.advance(len(pks))
    return total


def replica_keys(
    qs: models.QuerySet, out: TextIO, batch: int, bar: progress.Progress | None = None
) -> DiffResult:
    """Write the primary keys the replica holds, a line per batch."""
    out.write(header(qs.model.CQRS_ID) + "\n")
    seen = 0
    for pks in sync.batches(qs.values_list("pk", flat=True), batch, key=lambda pk: pk):
        _write(out, [wire.json_value(pk) for pk in pks])
        seen += len(pks)
        if bar is not None:
            bar.advance(len(pks))
    return DiffResult(seen, seen)


def master_missing(model: type[models.Model], lines: Iterable[str], out: TextIO,
                   report: Callable[[list], None] | None = None) -> DiffResult:
    """Pass on the replica's keys that the master no longer has.

    `report` is called with each line's keys passed on.
    """
    seen = found = 0
    alias = router.db_for_read(model)
    for pks in packages(lines):
        existing = {
            str(pk)
            for pk in model._default_manager.using(alias)
            .filter(pk__in=pks)
            .order_by()
            .values_list("pk", flat=True)
        }
        gone = [pk for pk in pks if str(pk) not in existing]
        seen, found = seen + len(pks), found + len(gone)
        if gone:
            _write(out, gone)
            if report is not None:
                report(gone)
    return DiffResult(seen, found)


def delete_missing(model: type[models.Model], lines: Iterable[str]) -> DiffResult:
    """Delete the replica rows whose keys the stream lists, a transaction per line.

    Each row goes through the model's `cqrs_delete` as a DELETE one revision past the
    row's own, so the replica leaves a tombstone and a late, older SAVE of the row
    cannot bring it back.
    """
    seen = deleted = 0
    alias = router.db_for_write(model)
    for pks in packages(lines):
        with transaction.atomic(using=alias):
            count = _delete(model, alias, pks)
        seen, deleted = seen + len(pks), deleted + count
        logger.info("Deleted %s stale rows of %s", count, model.CQRS_ID)
    return DiffResult(seen, deleted)


def _delete(model: type[models.Model], alias: str, pks: list[Any]) -> int:
    held = model._default_manager.using(alias).filter(pk__in=pks).order_by()
    now = timezone.now()
    count = 0
    for pk, revision in held.values_list("pk", wire.REVISION_KEY):
        count += bool(model.cqrs_delete(wire.delete_data(wire.json_value(pk), revision, now)))
    return count
