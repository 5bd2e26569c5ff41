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

import logging
from collections.abc import Iterable
from typing import Any

from django.db import connections, models

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.store import ddl

logger = logging.getLogger(__name__)

CAPTURE = contract.CAPTURE_TABLE
ROW_INDEX = ddl.ROW_INDEX
CLEAR_TRIGGER = ddl.CLEAR_TRIGGER
NOT_SUPPORTED = ("The database capture has no triggers for {vendor!r}: use PostgreSQL, "
                 "MySQL/MariaDB or SQLite, or CQRS['master']['capture'] = 'orm'.")


def _dialect(using: str) -> Any:
    dialect = store.dialect_of(connections[using])
    if dialect is None:
        raise ValueError(NOT_SUPPORTED.format(vendor=connections[using].display_name))
    return dialect


def statements(model_classes: Iterable[type[models.Model]], using: str = "default",
               *, remove: bool = False, shared: bool = True) -> list[str]:
    """Return the DDL that installs (or, with `remove`, drops) the capture triggers of
    `model_classes` on the database `using`; with `shared`, also the parts every table's
    triggers use (the outbox's clearing trigger, or its row index on PostgreSQL)."""
    dialect = _dialect(using)
    quote = connections[using].ops.quote_name
    out: list[str] = []
    for model_cls in model_classes:
        opts = model_cls._meta
        install, drop = dialect.capture_triggers(opts.db_table, opts.pk.column,
                                                 model_cls.CQRS_ID, quote)
        out += drop if remove else install
    if shared:
        out += dialect.shared_triggers(remove)
    return out


def install(model_classes: Iterable[type[models.Model]], using: str = "default",
            *, remove: bool = False, shared: bool = True) -> int:
    """Install (or drop) the capture triggers; return the number of statements run."""
    sql = statements(list(model_classes), using, remove=remove, shared=shared)
    with connections[using].cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)
    return len(sql)


def trigger_names(model_cls: type[models.Model], using: str = "default") -> list[str]:
    """Return the names of the capture triggers of `model_cls` on the database `using`."""
    return _dialect(using).trigger_names(model_cls._meta.db_table)


def existing(using: str = "default") -> set[str]:
    """Return the names of the capture triggers present on the database `using`."""
    with connections[using].cursor() as cursor:
        cursor.execute(_dialect(using).TRIGGERS_SQL)
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
    dialect = store.dialect_of(connection)
    if dialect is None:
        if chosen_all:
            logger.warning("CQRS capture mode 'database' has no triggers for %s: writes "
                           "outside the ORM are not captured on database %r",
                           connection.display_name, using)
        return
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    if CAPTURE not in tables:
        return
    present = existing(using)
    chosen = [m for m in chosen_all if m._meta.db_table in tables]
    others = [m for m in MasterRegistry.models.values()
              if not m._meta.abstract and m not in chosen and m._meta.db_table in tables
              and present.intersection(dialect.trigger_names(m._meta.db_table))]
    if others or (not chosen and dialect.CLEAR_TRIGGER in present):
        install(others, using, remove=True, shared=not chosen)
    missing = [m for m in chosen
               if not present.issuperset(dialect.trigger_names(m._meta.db_table))]
    if missing:
        install(missing, using)
