"""Mark events the broker returned as unroutable in a column of their own, `returned_at`.

Why a new nullable column rather than a status value or the `last_error` text: adding a
nullable column without a default rewrites nothing on PostgreSQL, MariaDB (instant ADD
COLUMN) or SQLite, while a new status would need every reader of `status` (relay claim
queries, partial indexes, admin filters, purge) to learn it. A marker inside
`last_error` would need `LIKE` in every query, which PostgreSQL can only match to a
partial index when the pattern is a literal, not a bound parameter.

The index holds only returned rows on PostgreSQL and SQLite (partial). InnoDB has no
partial indexes (see 0010), so on MySQL and MariaDB the same name indexes
(returned_at, routing_key): the NULLs sort first and the returned rows are one range.
"""

from django.db import migrations, models


def _mysql_index(which):
    columns = ("(`returned_at`, `routing_key`)", "(`routing_key`, `id`)")[which]

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "mysql":
            schema_editor.execute(
                "ALTER TABLE cqrs_outbox_event DROP INDEX `cqrs_outbox_returned_idx`, "
                f"ADD INDEX `cqrs_outbox_returned_idx` {columns}"
            )

    return run


class Migration(migrations.Migration):
    atomic = False  # MySQL commits DDL at once (as 0010)

    dependencies = [("cqrs_outbox", "0011_tombstone_updated")]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="returned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(returned_at__isnull=False),
                fields=["routing_key", "id"],
                name="cqrs_outbox_returned_idx",
            ),
        ),
        migrations.RunPython(_mysql_index(0), _mysql_index(1)),
    ]
