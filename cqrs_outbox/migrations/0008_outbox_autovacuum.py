"""Vacuum and analyse the outbox by the number of rows changed, not by its size.

Every event is inserted, updated once when published, and deleted after the retention
period, so the outbox makes dead rows at the event rate. PostgreSQL's defaults wait
until a fifth of the table is dead (a tenth changed, for ANALYZE); a table that keeps a
week of history is large, and that is millions of dead rows, many of them still listed
in the partial pending index that every claim walks. These settings ask autovacuum to
come after a fixed number of changed rows plus 1% of the table instead, so the pending
index stays near the size of the backlog and the statistics follow it.

Storage parameters of the table only, on PostgreSQL only; elsewhere this does nothing.
Servers that run with `autovacuum = off` ignore them (see docs/operations.md,
Outbox table health).
"""

from django.db import migrations

TABLE = "cqrs_outbox_event"
SETTINGS = {
    "autovacuum_vacuum_threshold": 10000,  # dead rows, plus the scale factor's share
    "autovacuum_vacuum_scale_factor": 0.01,  # of the table's rows
    "autovacuum_analyze_threshold": 10000,  # changed rows, plus the scale factor's share
    "autovacuum_analyze_scale_factor": 0.01,  # of the table's rows
}


def _set(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        values = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
        schema_editor.execute(f"ALTER TABLE {TABLE} SET ({values})")


def _reset(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET ({', '.join(SETTINGS)})")


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0007_event_trace_context")]

    operations = [migrations.RunPython(_set, _reset)]
