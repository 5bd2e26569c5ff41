"""The same writes on either implementation; both sides run `run(models)`."""

import datetime
import decimal
import uuid

MOMENT = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def run(models):
    """Create, update and delete one row of each model."""
    author = models.Author.objects.create(id=1, name="Ann")
    all_fields = models.AllFields.objects.create(
        id=1, int_field=7, bool_field=True, char_field="c", text_field="t",
        date_field=datetime.date(2024, 5, 6), datetime_field=MOMENT,
        decimal_field=decimal.Decimal("12.50"), float_field=1.5, url_field="https://x.org",
        uuid_field=UUID, json_field={"a": [1, 2]}, author=author,
    )
    empty = models.AllFields.objects.create(id=2)
    models.UUIDKeyed.objects.create(id=UUID, name="u")
    models.StrKeyed.objects.create(code="k-1", name="s")
    models.Publisher.objects.create(id=1, name="acme", book_count=3)
    tracked = models.Tracked.objects.create(id=1, name="one", author=author)
    tracked = models.Tracked.objects.get(pk=tracked.pk)
    tracked.name = "two"
    tracked.save()
    all_fields.int_field = 8
    all_fields.save()
    empty.delete()
    models.StrKeyed.objects.get(code="k-1").delete()
