"""The bulk path's own reads and writes hold every value as Django's ORM does.

On PostgreSQL the replica reads `cqrs_updated` as microseconds since the epoch, and a
large batch is written with its values spelled as SQL literals (int, UTC datetimes by
hand, the rest by the driver's quoting). Both are checked here against the ORM, on
values chosen to break a careless spelling.
"""

import datetime
import decimal
import uuid

import pytest
from django.db import connection

from cqrs_outbox import store
from cqrs_outbox.core.errors import BadMessage
from cqrs_outbox.replica import mapping, queries
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.timezone.utc
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

MOMENTS = [
    datetime.datetime(2026, 12, 8, 0, 35, 0, 123456, tzinfo=UTC),
    datetime.datetime(2026, 12, 8, 0, 35, 0, tzinfo=UTC),  # no fraction
    datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
    datetime.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime.datetime(2026, 6, 1, 12, 0, 0, 7, tzinfo=IST),
]


def test_revisions__read_every_moment_as_the_orm_reads_it():
    for pk, moment in enumerate(MOMENTS, start=1):
        models.AuthorRef.objects.create(id=pk, name=f"n{pk}", cqrs_revision=pk,
                                        cqrs_updated=moment)
    found = queries.revisions(models.AuthorRef, "default", list(range(1, len(MOMENTS) + 2)))
    orm = {r.pk: (r.cqrs_revision, r.cqrs_updated) for r in models.AuthorRef.objects.all()}
    assert found == orm
    assert [found[pk][1] for pk in range(1, len(MOMENTS) + 1)] == MOMENTS


@pytest.mark.postgres
def test_revisions__an_infinite_time_reads_as_unknown():
    models.AuthorRef.objects.create(id=1, name="a", cqrs_revision=4,
                                    cqrs_updated=MOMENTS[0])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE replica_authorref SET cqrs_updated = 'infinity'")
    assert queries.revisions(models.AuthorRef, "default", [1]) == {1: (4, None)}


def _rows(count):
    """Rows of AllFieldsRef by attname, with values a literal must not mangle."""
    texts = ["it's", "back\\slash", "per%cent %s", "-- not a comment", "ünï €", "", "\"q\""]
    rows = []
    for i in range(count):
        rows.append({
            "id": i + 1,
            "int_field": [-(2 ** 31), 2 ** 31 - 1, -1, 0][i % 4],
            "bool_field": i % 2 == 0,
            "char_field": texts[i % len(texts)],
            "text_field": texts[(i + 3) % len(texts)] * 3,
            "date_field": datetime.date(2026, 1, 1) + datetime.timedelta(days=i),
            "datetime_field": MOMENTS[i % len(MOMENTS)] if i % 7 else None,
            "decimal_field": decimal.Decimal("-12345678.90") if i % 3 else None,
            "float_field": [1.5, -0.0, 1e300, None][i % 4],
            "url_field": "https://example.com/?a=1&b='2'",
            "uuid_field": uuid.UUID(int=i),
            "json_field": {"k": texts[i % len(texts)], "n": [i, None]},
            "cqrs_revision": i,
            "cqrs_updated": MOMENTS[(i + 1) % len(MOMENTS)],
        })
    return rows


@pytest.mark.parametrize("count", [2, 40], ids=["few values", "many values"])
def test_upsert__writes_every_value_as_given(count):
    rows = _rows(count)
    # Past LITERAL_PAST, psycopg 3 gets the values as literals; below, as parameters.
    assert (count * 14 > store.LITERAL_PAST) == (count == 40)
    queries.upsert(models.AllFieldsRef, "default", rows, ["char_field"])
    fields = list(rows[0])
    stored = list(models.AllFieldsRef.objects.order_by("id").values(*fields))
    assert stored == rows


def test_upsert__an_existing_row_takes_only_the_columns_named():
    rows = _rows(40)
    queries.upsert(models.AllFieldsRef, "default", rows, [])
    changed = [{**row, "char_field": f"new {row['id']}", "int_field": 5} for row in rows]
    queries.upsert(models.AllFieldsRef, "default", changed, ["char_field"])
    stored = list(models.AllFieldsRef.objects.order_by("id").values("char_field", "int_field"))
    assert stored == [{"char_field": f"new {row['id']}", "int_field": row["int_field"]}
                      for row in rows]


@pytest.mark.parametrize("text", [
    "2026-12-08T00:35:00.123456+00:00", "2026-12-08 00:35:00+05:30", "2026-12-08T00:35:00Z",
    "2026-12-08T00:35:00", "2026-12-08", "2026-12-08T00:35:00,5+0100",
    "2026-12-08T00:35:00.123456789012-02:00", "2026-2-8T1:5",
])
def test_prepare__reads_cqrs_updated_as_the_field_reads_it(text):
    """The time an event was read by for the rules is the value written, where the field
    would read the same: the same moment as DateTimeField's own conversion."""
    data = {"id": 1, "name": "a", "cqrs_revision": 0, "cqrs_updated": text}
    change = mapping.prepare(models.AuthorRef, "SAVE", data)
    field = models.AuthorRef._meta.get_field("cqrs_updated")
    expected = field.to_python(text)
    if expected.tzinfo is None:
        expected = expected.replace(tzinfo=UTC)
    assert change.values["cqrs_updated"] == expected
    assert change.mapped["cqrs_updated"] == text  # the hooks still get it as sent


@pytest.mark.parametrize("text", ["yesterday", " 2026-12-08T00:35:00 "])
def test_prepare__refuses_a_cqrs_updated_the_field_cannot_read(text):
    """Text the field refuses (spaces around it too, which the rules' reading forgives)."""
    data = {"id": 1, "name": "a", "cqrs_revision": 0, "cqrs_updated": text}
    with pytest.raises(BadMessage, match="instance_data.cqrs_updated"):
        mapping.prepare(models.AuthorRef, "SAVE", data)
