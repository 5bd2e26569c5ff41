"""What ties the Django-free relay to the app: the schema its unit tests use, defaults."""

import sqlite3

from cqrs_outbox import conf
from cqrs_outbox.models import Lease, OutboxEvent
from relay import engine
from tests.unit.relay.conftest import SCHEMA


def _columns(connection, table):
    return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def test_unit_test_schema__has_the_columns_and_indexes_of_the_models():
    connection = sqlite3.connect(":memory:")
    for statement in SCHEMA:
        connection.execute(statement)
    for model in (OutboxEvent, Lease):
        expected = [field.column for field in model._meta.local_fields]
        assert _columns(connection, model._meta.db_table) == expected
    indexes = {row[1] for row in connection.execute("PRAGMA index_list(cqrs_outbox_event)")}
    assert {index.name for index in OutboxEvent._meta.indexes} <= indexes
    connection.close()


def test_engine_defaults__are_the_settings_defaults():
    keys = conf.SECTION_KEYS["relay"]
    defaults = engine.Config()
    for name, key in keys.items():
        if name == "metrics_port":  # the commands serve it; the engine never sees it
            continue
        assert getattr(defaults, name) == key.default, name
