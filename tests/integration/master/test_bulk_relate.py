"""`cqrs_outbox.utils.bulk_relate_cqrs_serialization`, as `dj_cqrs.utils` has it."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cqrs_outbox.master import relate
from cqrs_outbox.utils import bulk_relate_cqrs_serialization
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 20


def _publishers(first=1):
    return [models.Publisher(id=i, name=f"p{i}", book_count=i) for i in range(first, first + ROWS)]


def _bodies(outbox_rows):
    return [{k: v for k, v in r["body"]["instance_data"].items() if k != "cqrs_updated"}
            for r in outbox_rows()]


def _reads_of_publisher(queries):
    table = connection.ops.quote_name(models.Publisher._meta.db_table)
    return [q for q in queries if q["sql"].startswith("SELECT") and table in q["sql"]]


def test_bulk_create__same_events_with_one_read_instead_of_one_per_row(outbox_rows):
    with CaptureQueriesContext(connection) as plain:
        models.Publisher.cqrs.bulk_create(_publishers())
    with CaptureQueriesContext(connection) as bulk, bulk_relate_cqrs_serialization():
        models.Publisher.cqrs.bulk_create(_publishers(first=ROWS + 1))

    assert len(_reads_of_publisher(plain.captured_queries)) == ROWS
    assert len(_reads_of_publisher(bulk.captured_queries)) == 1
    bodies = _bodies(outbox_rows)
    assert bodies[ROWS:] == [
        {"id": i, "title": f"P{i}", "books": i, "cqrs_revision": 0}
        for i in range(ROWS + 1, 2 * ROWS + 1)
    ]


def test_second_save_in_the_context__event_carries_the_final_state(outbox_rows):
    with bulk_relate_cqrs_serialization(), transaction.atomic():
        publisher = models.Publisher.objects.create(id=1, name="first")
        publisher.name = "second"
        publisher.save()
    assert _bodies(outbox_rows)[-1]["title"] == "SECOND"


def test_decorator_and_context__active_inside_only_even_on_error():
    @bulk_relate_cqrs_serialization()
    def inside():
        return relate.active_bulk_relate()

    assert relate.active_bulk_relate() is None
    assert inside() is not None
    with pytest.raises(ValueError), bulk_relate_cqrs_serialization(cqrs_id="publisher"):
        assert relate.active_bulk_relate() is not None
        raise ValueError
    assert relate.active_bulk_relate() is None


def test_cqrs_id__other_models_are_not_cached():
    author = models.Author.objects.create(name="a")
    publisher = models.Publisher.objects.create(id=1, name="p")
    with bulk_relate_cqrs_serialization(cqrs_id="publisher") as context:
        context.register(author, "default")
        context.register(publisher, "default")
        assert context.get_cached_instance(author, "default") is None
        assert context.get_cached_instance(publisher, "default").name == "p"
        assert context.get_cached_instance(publisher, "other") is None
