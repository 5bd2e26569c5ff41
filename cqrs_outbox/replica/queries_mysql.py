"""The replica's statements that MySQL 8 and MariaDB 10.6+ need written their own way.

Row locks: MySQL's named locks (GET_LOCK) last for the session, not the transaction, so
a rolled-back batch would keep them. Instead the lock table of migration 0010 holds one
row per lock slot; a batch locks the slots of its rows with `SELECT ... FOR UPDATE`,
and InnoDB frees them at COMMIT or ROLLBACK, as PostgreSQL frees its transaction-level
advisory locks. The slot is the row's lock number modulo LOCK_SLOTS: two rows that share
a slot only take turns. Slots are locked in ascending order through the primary key
(record locks only: every slot exists), so two workers cannot deadlock on them.

Upsert: `INSERT ... ON DUPLICATE KEY UPDATE` fires on any unique key, where PostgreSQL's
`ON CONFLICT (pk)` fires on the primary key alone; a new row colliding with another
row's unique column would then overwrite that other row. So rows whose pk is not there
yet go in with a plain INSERT (which fails on such a collision, as on PostgreSQL), and
only rows already present go through the upsert, where the primary key, checked first,
is the duplicate. Which decides is read under the row locks above, so it is exact.
"""

from __future__ import annotations

from typing import Any

from django.db import models

LOCK_TABLE = "cqrs_outbox_rowlock"
LOCK_SLOTS = 65536  # rows of the lock table; a few hundred kB


def lock(connection: Any, numbers: list[int]) -> None:
    """Lock the slots of the lock numbers `numbers` until the transaction ends."""
    slots = sorted({number % LOCK_SLOTS for number in numbers})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT slot FROM {LOCK_TABLE} WHERE slot IN ({', '.join(['%s'] * len(slots))}) "
            "ORDER BY slot FOR UPDATE",
            slots,
        )


def split_present(model: type[models.Model], alias: str, rows: list[dict]) -> tuple[list, list]:
    """Return (rows whose pk is not in the table, rows whose pk is)."""
    pk = model._meta.pk.attname
    present = set(
        model._default_manager.using(alias).filter(pk__in=[row[pk] for row in rows])
        .order_by().values_list("pk", flat=True)
    )
    return ([row for row in rows if row[pk] not in present],
            [row for row in rows if row[pk] in present])


def conflict_clause(qn: Any, columns: list[str]) -> str:
    """Return the ON DUPLICATE KEY clause setting `columns` from the inserted values."""
    if not columns:
        return ""
    assignments = ", ".join(f"{qn(c)} = VALUES({qn(c)})" for c in columns)
    return f" ON DUPLICATE KEY UPDATE {assignments}"
