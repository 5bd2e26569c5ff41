"""Let PostgreSQL fill the bookkeeping columns of a new outbox row.

A master's event INSERT then sends only the columns that carry the event (cqrs_id, pk,
signal type, revision, partition, routing key, payload, correlation id): fewer bound
values on the hot write path. status, attempts, last_error, available_at and created_at
get server-side defaults matching the model's. Django's model state does not know them
(it keeps defaults in Python), which changes nothing for the ORM.

Other databases keep receiving those values from the writer.
"""

from django.db import migrations

SET = """
ALTER TABLE cqrs_outbox_event
    ALTER COLUMN status SET DEFAULT 'pending',
    ALTER COLUMN attempts SET DEFAULT 0,
    ALTER COLUMN last_error SET DEFAULT '',
    ALTER COLUMN available_at SET DEFAULT now(),
    ALTER COLUMN created_at SET DEFAULT now()
"""

DROP = """
ALTER TABLE cqrs_outbox_event
    ALTER COLUMN status DROP DEFAULT,
    ALTER COLUMN attempts DROP DEFAULT,
    ALTER COLUMN last_error DROP DEFAULT,
    ALTER COLUMN available_at DROP DEFAULT,
    ALTER COLUMN created_at DROP DEFAULT
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0005_admin_failed_index")]

    operations = [migrations.RunPython(_run(SET), _run(DROP))]
