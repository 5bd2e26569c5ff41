"""Index the failed outbox rows, so the admin's summary and failed filter skip history.

Every load of the outbox admin counts failed events; without an index that is a scan of
the whole table (107 ms of a 166 ms page at a million rows in bench/admin.py, growing
with the table). Failed rows are rare, so this partial index stays tiny, and rows that
never fail never enter it.

The index is created in SQL, not declared on the model, and Django's model state does
not know it; on PostgreSQL it is built CONCURRENTLY so master writes go on meanwhile.
MySQL and MariaDB have no partial indexes: there the pending index of 0010, led by the
status, serves the failed rows too, and this migration does nothing.
"""

from django.db import migrations

NAME = "cqrs_outbox_failed_idx"
COLUMNS = "ON cqrs_outbox_event (id) WHERE status = 'failed'"


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        return
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {NAME} {COLUMNS}")


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        return
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {NAME}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("cqrs_outbox", "0002_notify_trigger")]

    operations = [migrations.RunPython(_create, _drop)]
