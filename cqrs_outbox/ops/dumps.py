"""Bulk dumps of master models and their load into replicas, in django-cqrs's format.

A dump is text: the first line is the CQRS_ID, then one line per row holding the JSON
`instance_data` of that row, exactly as a SAVE event would carry it. django-cqrs's
`cqrs_bulk_load` reads our dumps and ours reads theirs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from django.db import models, router, transaction

from cqrs_outbox.core import contract, wire
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.master import serialization
from cqrs_outbox.ops import progress, sync

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counts:
    """How many rows a dump or load took, and how many it could not."""

    done: int
    failed: int


def _data(row: models.Model, alias: str) -> dict:
    # A model's own to_cqrs_dict() is called as django-cqrs's dump calls it; the
    # default one is spared re-reading the row it was just handed.
    if serialization.own_dict(type(row)):
        return row.to_cqrs_dict()
    return serialization.instance_data(row, alias, fetch=False)


def dump(
    model: type[models.Model],
    out: TextIO,
    errors: TextIO,
    batch: int = contract.DEFAULT_BATCH,
    bar: progress.Progress | None = None,
) -> Counts:
    """Write the dump of every row of master `model` to `out`, in primary key order.

    As django-cqrs writes it: the CQRS_ID, then each row on a line of its own, with no
    newline after the last line (a dump of no rows is the CQRS_ID alone).
    """
    alias = router.db_for_read(model)
    qs = model.relate_cqrs_serialization(model._default_manager.using(alias).order_by())
    out.write(model.CQRS_ID)
    done = failed = 0
    for rows in sync.batches(qs, batch):
        for row in rows:
            try:
                line = wire.dumps(_data(row, alias))
            except Exception as exc:  # one bad row must not end a dump of millions
                errors.write(f"Dump record failed for pk={row.pk}: {type(exc).__name__}: {exc}\n")
                failed += 1
                continue
            out.write("\n" + line)
            done += 1
        if bar is not None:
            bar.advance(len(rows))
    out.flush()
    return Counts(done, failed)


def read_header(lines: Iterable[str], source: str) -> str:
    """Return the first line of a dump or diff stream, stripped; complain if there is none."""
    first = next(iter(lines), "").strip()
    if not first:
        raise ConfigurationError(f"{source} is empty: expected a first line naming the CQRS_ID.")
    return first


def load(
    model: type[models.Model],
    lines: Iterable[str],
    errors: TextIO,
    batch: int = contract.DEFAULT_BATCH,
    bar: progress.Progress | None = None,
) -> Counts:
    """Apply the dump lines (after the header) to replica `model`, `batch` per transaction.

    The dump's header is line 1, so the first record is reported as line 2. A line that
    is not JSON or that the model refuses is reported with its number and skipped.
    """
    done = failed = 0
    alias = router.db_for_write(model)
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=2):
        if line.strip():
            chunk.append((number, line))
        if len(chunk) >= batch:
            ok = _load_chunk(model, chunk, alias, errors)
            done, failed, chunk = done + ok, failed + len(chunk) - ok, []
            if bar is not None:
                bar.advance(batch)
    if chunk:
        ok = _load_chunk(model, chunk, alias, errors)
        done, failed = done + ok, failed + len(chunk) - ok
        if bar is not None:
            bar.advance(len(chunk))
    return Counts(done, failed)


def _load_chunk(model: type[models.Model], chunk: list, alias: str, errors: TextIO) -> int:
    loaded = 0
    with transaction.atomic(using=alias):
        for number, line in chunk:
            loaded += _load_line(model, number, line, alias, errors)
    return loaded


def _load_line(
    model: type[models.Model], number: int, line: str, alias: str, errors: TextIO
) -> int:
    try:
        data = json.loads(line)
    except ValueError:
        errors.write(f"Dump file can't be parsed: line {number}!\n")
        return 0
    try:
        # A savepoint per line: one failing row leaves the rest of the batch usable.
        with transaction.atomic(using=alias):
            instance = model.cqrs_save(data)
    except Exception as exc:  # report the line and go on, as django-cqrs does
        errors.write(f"Unexpected error: line {number}! {type(exc).__name__}: {exc}\n")
        return 0
    if not instance:
        errors.write(f"Instance can't be saved: line {number}!\n")
        return 0
    return 1


def clear(model: type[models.Model]) -> int:
    """Delete every row of replica `model` before a load; return how many went."""
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        deleted, _ = model._default_manager.using(alias).all().delete()
    logger.info("Cleared %s rows of %s before loading", deleted, model.CQRS_ID)
    return deleted
