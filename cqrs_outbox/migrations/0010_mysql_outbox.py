"""Fit the outbox tables to MySQL 8 and MariaDB 10.6+; nothing happens on other databases.

Character set: every table of the app becomes utf8mb4 with the binary collation, so a
body keeps any character (the old `utf8` of MySQL stops at three bytes) and a cqrs_id or
pk compares exactly, as on PostgreSQL: a case-insensitive collation would make the
tombstones of pk `A` and `a` collide. `payload` is Django's TextField, LONGTEXT here:
bodies up to 4 GiB, byte for byte (a JSON column would re-serialise them).

Indexes: InnoDB has no partial indexes, so Django created the model's two indexes
without their conditions. Plain indexes led by the status take their place, under the
same names, so the relay's claim is still one range scan over the pending rows of one
partition in id order: (status, partition, id). A generated column holding the
partition only while pending would not make that index smaller, as InnoDB keeps NULL
entries in secondary indexes; the status column in front gives the same range for the
same cost. The published index becomes (status, published_at), and the pending index
also serves the failed rows (migration 0005 adds nothing here).

Replica row locks: MySQL has no transaction-level advisory locks, so a replica locks rows
of `cqrs_outbox_rowlock`, one per lock slot, all made here (see
`cqrs_outbox.replica.queries_mysql`). The table is not a model: only that module uses it.
"""

from django.db import migrations

TABLES = ("cqrs_outbox_event", "cqrs_outbox_lease", "cqrs_outbox_tombstone")
INDEXES = {
    "cqrs_outbox_pending_idx": ("(`status`, `partition`, `id`)", "(`partition`, `id`)"),
    "cqrs_outbox_published_idx": ("(`status`, `published_at`)", "(`published_at`)"),
}


def _indexes(which):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "mysql":
            return
        for name, columns in INDEXES.items():
            schema_editor.execute(
                f"ALTER TABLE cqrs_outbox_event DROP INDEX `{name}`, "
                f"ADD INDEX `{name}` {columns[which]}"
            )

    return run


def _utf8mb4(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        for table in TABLES:
            schema_editor.execute(
                f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )


LOCK_TABLE = "cqrs_outbox_rowlock"
LOCK_SLOTS = 65536  # as cqrs_outbox.replica.queries_mysql.LOCK_SLOTS, fixed here
LOCK_CHUNK = 4096  # slots per INSERT


def _lock_table(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    schema_editor.execute(
        f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (slot INT NOT NULL PRIMARY KEY) "
        "ENGINE=InnoDB"
    )
    for start in range(0, LOCK_SLOTS, LOCK_CHUNK):
        values = ", ".join(f"({n})" for n in range(start, start + LOCK_CHUNK))
        schema_editor.execute(f"INSERT IGNORE INTO {LOCK_TABLE} (slot) VALUES {values}")


def _drop_lock_table(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"DROP TABLE IF EXISTS {LOCK_TABLE}")


class Migration(migrations.Migration):
    atomic = False  # MySQL commits DDL at once; Django refuses it inside a transaction

    dependencies = [("cqrs_outbox", "0009_event_signature")]

    operations = [
        migrations.RunPython(_utf8mb4, migrations.RunPython.noop),
        migrations.RunPython(_indexes(0), _indexes(1)),
        migrations.RunPython(_lock_table, _drop_lock_table),
    ]
