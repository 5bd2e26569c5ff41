"""The database-side safety net: triggers that record row changes made without an event.

With `CQRS['master']['capture'] = 'database'` (or `CQRS_CAPTURE = 'database'` on a
model), each master table gets triggers that notice an INSERT, UPDATE or DELETE made
without an outbox event in the same transaction (raw SQL, a data migration's RunSQL, a
fix in psql, another service) and record (cqrs_id, table, pk, kind) in the capture table
in that same transaction. `cqrs_outbox.master.outside` turns the records into events.

How a change the ORM already wrote an event for is told apart:

- PostgreSQL: a deferred constraint trigger per row. It runs at COMMIT, after the
  ORM's commit-time flush has inserted the transaction's events, and looks for an event
  of the same row inserted by this transaction (`xmin` is the transaction's id), through
  a partial index on pending events. Found: nothing is written. ORM writes therefore pay
  one index probe per row at commit, and write nothing.
- MySQL/MariaDB and SQLite have no deferred triggers. A row trigger records every
  change, and a trigger on the outbox deletes the records of the row when its event is
  inserted, before COMMIT: an ORM write leaves no committed record, at the cost of one
  insert and one delete in the same statement as its writes.

Both ride on the transaction itself, so savepoints (a rolled-back savepoint takes its
records with it), PgBouncer transaction pooling (nothing is kept on the session) and
concurrent writers (each sees only its own uncommitted rows) need nothing more.

The DDL is written by `cqrs_capture --install` (and `--sql` prints it, for a migration of
your own), and installed after every `migrate` while the mode is on. The raise of
`cqrs_revision` is left to the Django side, under the row lock: a trigger cannot tell a
raw write from a second ORM save in one transaction, which keeps the revision by design.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from django.db import connections, models

from cqrs_outbox.core import contract

logger = logging.getLogger(__name__)

CAPTURE = contract.CAPTURE_TABLE
OUTBOX = contract.OUTBOX_TABLE
ROW_INDEX = "cqrs_outbox_event_row_idx"
CLEAR_TRIGGER = "cqrs_outbox_capture_clear"
KINDS = {"INSERT": "I", "UPDATE": "U", "DELETE": "D"}
# When the change was made, in UTC, read when the trigger runs: after the writer got the
# row's lock, so a delete is stamped after the save it waited for (the time is sent as a
# DELETE's cqrs_updated, which replicas compare with the row's). The statement's start
# (NOW(), UTC_TIMESTAMP(), PostgreSQL's now()) can come before that save. MySQL has no
# UTC form of SYSDATE(), so the statement's UTC start is moved on by the time since.
MYSQL_NOW = ("UTC_TIMESTAMP(6) + INTERVAL TIMESTAMPDIFF(MICROSECOND, NOW(6), SYSDATE(6)) "
             "MICROSECOND")


def name(prefix: str, table: str) -> str:
    """Return a trigger or function name for `table`, within every database's 64 bytes."""
    full = f"{prefix}_{table}"
    if len(full) <= 60:
        return full
    return f"{full[:49]}_{hashlib.sha1(table.encode()).hexdigest()[:10]}"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _columns(model_cls: type[models.Model]) -> tuple[str, str, str]:
    opts = model_cls._meta
    return opts.db_table, opts.pk.column, model_cls.CQRS_ID


# -- PostgreSQL --------------------------------------------------------------------------

def _postgresql(model_cls: type[models.Model], quote) -> tuple[list[str], list[str]]:
    table, pk, cqrs_id = _columns(model_cls)
    function, trigger = name("cqrs_outbox_capture_fn", table), name("cqrs_outbox_capture", table)
    body = f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
DECLARE
    row_pk text;
    deleted bigint;
    me xid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_pk := OLD.{quote(pk)}::text;
        deleted := OLD.cqrs_revision;
    ELSE
        row_pk := NEW.{quote(pk)}::text;
    END IF;
    me := (txid_current() % 4294967296)::text::xid;
    PERFORM 1 FROM {OUTBOX} e
        WHERE e.status = 'pending' AND e.cqrs_id = {_literal(cqrs_id)}
          AND e.instance_pk = row_pk AND e.xmin = me
        LIMIT 1;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO {CAPTURE} (cqrs_id, table_name, instance_pk, kind, revision, created_at)
        VALUES ({_literal(cqrs_id)}, TG_TABLE_NAME, row_pk, substr(TG_OP, 1, 1), deleted,
                clock_timestamp());
    PERFORM pg_notify({_literal(contract.NOTIFY_CHANNEL)}, '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql"""
    install = [
        f"CREATE INDEX IF NOT EXISTS {ROW_INDEX} ON {OUTBOX} (cqrs_id, instance_pk) "
        f"WHERE status = 'pending'",
        body,
        f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}",
        f"CREATE CONSTRAINT TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE "
        f"ON {quote(table)} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        f"EXECUTE FUNCTION {function}()",
    ]
    drop = [f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}",
            f"DROP FUNCTION IF EXISTS {function}()"]
    return install, drop


# -- MySQL/MariaDB and SQLite: record every change, clear it when the event comes ---------

def _row_triggers(model_cls: type[models.Model], quote, vendor: str) -> tuple[list, list]:
    table, pk, cqrs_id = _columns(model_cls)
    now = MYSQL_NOW if vendor == "mysql" else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    text = "CHAR" if vendor == "mysql" else "TEXT"
    install, drop = [], []
    for op, kind in KINDS.items():
        trigger = name(f"cqrs_outbox_capture_{kind.lower()}", table)
        row = "OLD" if op == "DELETE" else "NEW"
        revision = "OLD.cqrs_revision" if op == "DELETE" else "NULL"
        insert = (
            f"INSERT INTO {CAPTURE} (cqrs_id, table_name, instance_pk, kind, revision, "
            f"created_at) VALUES ({_literal(cqrs_id)}, {_literal(table)}, "
            f"CAST({row}.{quote(pk)} AS {text}), '{kind}', {revision}, {now})"
        )
        drop.append(f"DROP TRIGGER IF EXISTS {trigger}" if vendor == "mysql"
                    else f"DROP TRIGGER IF EXISTS {quote(trigger)}")
        install.append(drop[-1])
        if vendor == "mysql":
            install.append(f"CREATE TRIGGER {trigger} AFTER {op} ON {quote(table)} "
                           f"FOR EACH ROW {insert}")
        else:
            install.append(f"CREATE TRIGGER {quote(trigger)} AFTER {op} ON {quote(table)} "
                           f"FOR EACH ROW BEGIN {insert}; END")
    return install, drop


def _clear_trigger(vendor: str) -> list[str]:
    # A DELETE event clears every record of its row; a SAVE leaves a recorded delete, so a
    # row deleted outside the ORM and created again keeps the news of its deletion.
    delete = (
        f"DELETE FROM {CAPTURE} WHERE cqrs_id = NEW.cqrs_id AND instance_pk = NEW.instance_pk "
        f"AND (kind <> 'D' OR NEW.signal_type = 'DELETE')"
    )
    create = f"CREATE TRIGGER {CLEAR_TRIGGER} AFTER INSERT ON {OUTBOX} FOR EACH ROW"
    body = f"{create} {delete}" if vendor == "mysql" else f"{create} BEGIN {delete}; END"
    return [f"DROP TRIGGER IF EXISTS {CLEAR_TRIGGER}", body]


# -- the interface -----------------------------------------------------------------------

def supported(vendor: str) -> bool:
    """Tell whether the safety net has triggers for this database vendor."""
    return vendor in ("postgresql", "mysql", "sqlite")


def statements(model_classes: Iterable[type[models.Model]], using: str = "default",
               *, remove: bool = False, shared: bool = True) -> list[str]:
    """Return the DDL that installs (or, with `remove`, drops) the capture triggers of
    `model_classes` on the database `using`; with `shared`, also the parts every table's
    triggers use (the outbox's clearing trigger, or its row index on PostgreSQL)."""
    connection = connections[using]
    vendor, quote = connection.vendor, connection.ops.quote_name
    if not supported(vendor):
        raise ValueError(f"The database capture has no triggers for {vendor!r}: use "
                         "PostgreSQL, MySQL/MariaDB or SQLite, or CQRS['master']['capture'] "
                         "= 'orm'.")
    out: list[str] = []
    for model_cls in model_classes:
        if vendor == "postgresql":
            install, drop = _postgresql(model_cls, quote)
        else:
            install, drop = _row_triggers(model_cls, quote, vendor)
        out += drop if remove else install
    if not shared:
        return out
    if vendor != "postgresql":
        clear = _clear_trigger(vendor)
        out += clear[:1] if remove else clear
    elif remove:
        out.append(f"DROP INDEX IF EXISTS {ROW_INDEX}")
    return out


def install(model_classes: Iterable[type[models.Model]], using: str = "default",
            *, remove: bool = False, shared: bool = True) -> int:
    """Install (or drop) the capture triggers; return the number of statements run."""
    sql = statements(list(model_classes), using, remove=remove, shared=shared)
    with connections[using].cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)
    return len(sql)


def trigger_names(model_cls: type[models.Model], vendor: str) -> list[str]:
    """Return the names of the capture triggers of `model_cls` on `vendor`."""
    table = model_cls._meta.db_table
    if vendor == "postgresql":
        return [name("cqrs_outbox_capture", table)]
    return [name(f"cqrs_outbox_capture_{kind.lower()}", table) for kind in KINDS.values()]


def existing(using: str = "default") -> set[str]:
    """Return the names of the capture triggers present on the database `using`."""
    connection = connections[using]
    sql = {
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                      "AND tgname LIKE 'cqrs_outbox_capture%%'",
        "mysql": "SELECT trigger_name FROM information_schema.triggers WHERE "
                 "trigger_schema = DATABASE() AND trigger_name LIKE 'cqrs_outbox_capture%%'",
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                  "AND name LIKE 'cqrs_outbox_capture%%'",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {row[0] for row in cursor.fetchall()}


def sync(using: str = "default", **kwargs: object) -> None:
    """Make the triggers on `using` follow the capture modes: installed on the tables of
    models in mode 'database', dropped from the other master tables. Runs after every
    `migrate` (a post_migrate receiver), and touches only tables whose triggers must
    change: DDL on a table waits for its open transactions, and every write waits for it.
    """
    from cqrs_outbox.master import outside
    from cqrs_outbox.registry import MasterRegistry

    connection = connections[using]
    chosen_all = outside.models_in_database_mode()
    if not supported(connection.vendor):
        if chosen_all:
            logger.warning("CQRS capture mode 'database' has no triggers for %s: writes "
                           "outside the ORM are not captured on database %r",
                           connection.vendor, using)
        return
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    if CAPTURE not in tables:
        return
    present = existing(using)
    vendor = connection.vendor
    chosen = [m for m in chosen_all if m._meta.db_table in tables]
    others = [m for m in MasterRegistry.models.values()
              if not m._meta.abstract and m not in chosen and m._meta.db_table in tables
              and present.intersection(trigger_names(m, vendor))]
    if others or (not chosen and CLEAR_TRIGGER in present):
        install(others, using, remove=True, shared=not chosen)
    missing = [m for m in chosen if not present.issuperset(trigger_names(m, vendor))]
    if missing:
        install(missing, using)
