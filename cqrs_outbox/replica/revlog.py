"""Log lost, stale and duplicate revisions with django-cqrs's levels and wording.

Operators alert on these lines, so the key phrases and levels are django-cqrs's own
(its `ReplicaManager.update_instance`). The consumer logs the first few of each kind in
a batch and then one summary line for the batch; a direct call of the manager logs
every one, as django-cqrs does.
"""

from __future__ import annotations

import logging
from typing import Any

from cqrs_outbox.core.escape import one_line

LOST = "lost"  # revisions between the row's and this one never arrived
STALE = "stale"  # older than the row
DUPLICATE = "duplicate"  # the row's own revision again
SYNC_DOWNGRADE = "sync_downgrade"  # a SYNC older than the row
TOMBSTONED = "tombstoned"  # a SAVE for a row deleted at this revision or later
CLOCK = "clock"  # a higher revision than the row's, but from well before the row's time
PK_CHARS = 200  # characters of a primary key quoted in a line


def lines(note: str, cqrs_id: str, pk: Any, revision: int,
          existing: int | None) -> list[tuple[int, str]]:
    """Return the (level, text) lines django-cqrs writes for one event with `note`."""
    pk = one_line(pk, PK_CHARS)
    cqrs_id = one_line(cqrs_id, PK_CHARS)
    if note == LOST and existing is not None:
        return [(logging.WARNING,
                 f"Lost or filtered out {revision - existing - 1} CQRS packages: pk = {pk}, "
                 f"cqrs_revision = {revision} ({cqrs_id})")]
    if note == STALE:
        return [(logging.ERROR,
                 f"Wrong CQRS sync order: pk = {pk}, cqrs_revision = new {revision} / "
                 f"existing {existing} ({cqrs_id}).")]
    if note == DUPLICATE:
        found = [(logging.ERROR,
                  f"Received duplicate CQRS data: pk = {pk}, cqrs_revision = {revision} "
                  f"({cqrs_id}).")]
        if revision == 0:
            found.append((logging.WARNING,
                          f"CQRS potential creation race condition: pk = {pk} ({cqrs_id})."))
        return found
    if note == CLOCK:
        return [(logging.WARNING,
                 f"CQRS event older than the row by the master's clock: pk = {pk}, "
                 f"cqrs_revision = new {revision} / existing {existing} ({cqrs_id}); "
                 "ignored as a late event from before the row was deleted and created "
                 "again (or the master's clocks disagree).")]
    if note == SYNC_DOWNGRADE:
        return [(logging.WARNING,
                 f"CQRS revision downgrade on sync: pk = {pk}, cqrs_revision = new {revision} "
                 f"/ existing {existing} ({cqrs_id}). Ignored: the row is newer.")]
    return []


def note_for(signal_type: str, revision: int, existing: int | None, applies: bool) -> str:
    """Return which of the notes above an event at `revision` earns against a row."""
    if existing is None:
        return ""
    if signal_type == "SYNC":
        return SYNC_DOWNGRADE if revision < existing else ""
    if signal_type == "DELETE":
        return ""
    if applies:
        return LOST if revision > existing + 1 else ""
    return DUPLICATE if revision == existing else STALE


def log(logger: logging.Logger, note: str, cqrs_id: str, pk: Any, revision: int,
        existing: int | None) -> None:
    """Write the lines of one event."""
    for level, text in lines(note, cqrs_id, pk, revision, existing):
        logger.log(level, "%s", text)
