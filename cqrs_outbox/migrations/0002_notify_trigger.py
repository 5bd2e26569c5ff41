"""On PostgreSQL, wake relays when events are inserted.

A statement-level trigger calls pg_notify with an empty payload; PostgreSQL folds
identical notifications of one transaction into one, so a transaction that writes many
events sends a single wake-up, delivered at commit.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION cqrs_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('cqrs_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS cqrs_outbox_notify ON cqrs_outbox_event;
CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON cqrs_outbox_event
    FOR EACH STATEMENT EXECUTE FUNCTION cqrs_outbox_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS cqrs_outbox_notify ON cqrs_outbox_event;
DROP FUNCTION IF EXISTS cqrs_outbox_notify();
"""


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0001_initial")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
