"""The parts of the capture triggers' DDL that every dialect shares: names, tables, and
the record-and-clear triggers of the databases without deferred triggers.

MySQL/MariaDB and SQLite record every change of a master row in the capture table, and a
trigger on the outbox deletes a row's records when its event is inserted, before COMMIT:
an ORM write leaves no committed record. PostgreSQL's deferred trigger is its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cqrs_outbox.core import contract

CAPTURE = contract.CAPTURE_TABLE
OUTBOX = contract.OUTBOX_TABLE
ROW_INDEX = "cqrs_outbox_event_row_idx"
CLEAR_TRIGGER = "cqrs_outbox_capture_clear"
KINDS = {"INSERT": "I", "UPDATE": "U", "DELETE": "D"}


def name(prefix: str, table: str) -> str:
    """Return a trigger or function name for `table`, within every database's 64 bytes."""
    full = f"{prefix}_{table}"
    if len(full) <= 60:
        return full
    return f"{full[:49]}_{hashlib.sha1(table.encode()).hexdigest()[:10]}"


def literal(value: str) -> str:
    """Return `value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def row_trigger_names(table: str) -> list[str]:
    """Return the names of the three row triggers of `table` (insert, update, delete)."""
    return [name(f"cqrs_outbox_capture_{kind.lower()}", table) for kind in KINDS.values()]


def row_triggers(table: str, pk: str, cqrs_id: str, quote: Callable[[str], str], *,
                 now: str, text: str, create: Callable[[str, str, str], str],
                 drop: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """Return the install and drop DDL of `table`'s row triggers, each recording a change.

    `now` is the SQL of the current UTC time when the trigger runs, `text` the type a
    primary key is cast to; `create(trigger, op, insert)` and `drop(trigger)` write a
    dialect's CREATE TRIGGER and DROP TRIGGER.
    """
    install, drops = [], []
    for (op, kind), trigger in zip(KINDS.items(), row_trigger_names(table), strict=True):
        row = "OLD" if op == "DELETE" else "NEW"
        revision = "OLD.cqrs_revision" if op == "DELETE" else "NULL"
        insert = (
            f"INSERT INTO {CAPTURE} (cqrs_id, table_name, instance_pk, kind, revision, "
            f"created_at) VALUES ({literal(cqrs_id)}, {literal(table)}, "
            f"CAST({row}.{quote(pk)} AS {text}), '{kind}', {revision}, {now})"
        )
        drops.append(drop(trigger))
        install += [drops[-1], create(trigger, op, insert)]
    return install, drops


def clear_trigger(wrap: Callable[[str], str]) -> list[str]:
    """Return the DDL of the outbox trigger that clears a row's records when its event
    comes: a DELETE event clears them all; a SAVE leaves a recorded delete, so a row
    deleted outside the ORM and created again keeps the news of its deletion.
    `wrap(statement)` writes the trigger's body as the dialect wants it."""
    delete = (
        f"DELETE FROM {CAPTURE} WHERE cqrs_id = NEW.cqrs_id AND instance_pk = NEW.instance_pk "
        f"AND (kind <> 'D' OR NEW.signal_type = 'DELETE')"
    )
    create = f"CREATE TRIGGER {CLEAR_TRIGGER} AFTER INSERT ON {OUTBOX} FOR EACH ROW"
    return [f"DROP TRIGGER IF EXISTS {CLEAR_TRIGGER}", f"{create} {wrap(delete)}"]
