"""An abstract replica model without a table gets its events in its own handlers."""

import pytest

from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db(transaction=True)


def test_abstract_no_db_replica__save_sync_and_delete_reach_its_handlers(apply_batch):
    assert apply_batch(
        ev.save("no_table", 1, 0, name="a"), ev.sync("no_table", 1, 0, name="b"),
        ev.delete("no_table", 1, 1),
    ) == ["applied", "applied", "applied"]
    assert list(models.RawLog.objects.order_by("id").values_list("signal_type", "pk_value")) == [
        ("SAVE", "1"), ("SYNC", "1"), ("DELETE", "1"),
    ]
