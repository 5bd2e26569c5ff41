"""What ties the Django-free relay to the app: the schema its unit tests use, its config."""

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


def test_relay_config__reads_the_relay_settings_and_takes_overrides(settings):
    settings.CQRS = {**settings.CQRS, "relay": {"batch_size": 7, "lease_ttl": 12.5}}
    config = conf.relay_config(poll_interval=0.25, max_attempts=None)
    assert (config.batch_size, config.lease_ttl, config.poll_interval) == (7, 12.5, 0.25)
    assert config.max_attempts == engine.Config().max_attempts  # None leaves the setting
    assert config.retention == conf.get().relay.retention
