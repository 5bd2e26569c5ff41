"""Master models of the test project: every basic field type, odd keys, every hook."""

import uuid

from django.db import models

from cqrs_outbox.metas import MasterMeta
from cqrs_outbox.mixins import MasterMixin, RawMasterMixin


class Author(MasterMixin, models.Model):
    CQRS_ID = "author"

    name = models.CharField(max_length=100)


class AllFields(MasterMixin, models.Model):
    CQRS_ID = "all_fields"

    int_field = models.IntegerField(default=0)
    bool_field = models.BooleanField(default=False)
    char_field = models.CharField(max_length=100, default="")
    text_field = models.TextField(default="")
    date_field = models.DateField(null=True)
    datetime_field = models.DateTimeField(null=True)
    decimal_field = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    float_field = models.FloatField(null=True)
    url_field = models.URLField(default="")
    uuid_field = models.UUIDField(null=True)
    json_field = models.JSONField(null=True)
    author = models.ForeignKey(Author, null=True, on_delete=models.SET_NULL)


class UUIDKeyed(MasterMixin, models.Model):
    CQRS_ID = "uuid_keyed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=100)


class StrKeyed(MasterMixin, models.Model):
    CQRS_ID = "str_keyed"

    code = models.CharField(max_length=50, primary_key=True)
    name = models.CharField(max_length=100)


class Publisher(MasterMixin, models.Model):
    CQRS_ID = "publisher"
    CQRS_SERIALIZER = "tests.testproject.master.serializers.PublisherSerializer"

    name = models.CharField(max_length=100)
    book_count = models.IntegerField(default=0)


class Tracked(MasterMixin, models.Model):
    CQRS_ID = "tracked"
    CQRS_TRACKED_FIELDS = ["name", "author"]

    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="new")
    author = models.ForeignKey(Author, null=True, on_delete=models.SET_NULL)


class Filtered(MasterMixin, models.Model):
    CQRS_ID = "filtered"

    name = models.CharField(max_length=100)

    def is_sync_instance(self):
        return len(self.name) > 2


class Silent(MasterMixin, models.Model):
    CQRS_ID = "silent"
    CQRS_PRODUCE = False

    name = models.CharField(max_length=100)


class Partial(MasterMixin, models.Model):
    CQRS_ID = "partial"
    CQRS_FIELDS = ["id", "name"]

    name = models.CharField(max_length=100)
    secret = models.CharField(max_length=100, default="hidden")


class WithDeleteData(MasterMixin, models.Model):
    CQRS_ID = "with_delete_data"

    name = models.CharField(max_length=100)

    def get_custom_cqrs_delete_data(self):
        return {"name": self.name}


class Raw(RawMasterMixin):
    CQRS_ID = "raw"

    name = models.CharField(max_length=100)


MasterMeta.register(Raw)


class Plain(models.Model):
    """No CQRS at all: the baseline of the write benchmark."""

    name = models.CharField(max_length=100)
    cqrs_revision = models.IntegerField(default=0)
    cqrs_updated = models.DateTimeField(auto_now=True)

class Writer(MasterMixin, models.Model):
    """A master whose serializer nests rows of another table, read at commit."""

    CQRS_ID = "writer"
    CQRS_SERIALIZER = "tests.testproject.master.serializers.WriterSerializer"

    name = models.CharField(max_length=100)

    @classmethod
    def relate_cqrs_serialization(cls, queryset):
        # Rows named "hidden..." are filtered out, as a real filter on status might do.
        return queryset.prefetch_related("books").exclude(name__startswith="hidden")


class Book(models.Model):
    writer = models.ForeignKey(Writer, related_name="books", on_delete=models.CASCADE)
    title = models.CharField(max_length=100)


class Fragile(MasterMixin, models.Model):
    """A master whose serializer raises for names starting with "boom"."""

    CQRS_ID = "fragile"
    CQRS_SERIALIZER = "tests.testproject.master.serializers.FragileSerializer"

    name = models.CharField(max_length=100)


class OwnDict(MasterMixin, models.Model):
    """A master that overrides to_cqrs_dict() and cqrs_sync(), as django-cqrs users do."""

    CQRS_ID = "own_dict"

    name = models.CharField(max_length=100)

    def to_cqrs_dict(self, using=None, sync=False):
        data = super().to_cqrs_dict(using, sync=sync)
        data["shout"] = self.name.upper()
        return data

    def cqrs_sync(self, using=None, queue=None):
        if self.name.startswith("bad"):
            raise ValueError(f"cannot sync {self.name}")
        return super().cqrs_sync(using=using, queue=queue)


class Counter(MasterMixin, models.Model):
    """Every field tracked, so previous_data carries cqrs_revision and F() updates."""

    CQRS_ID = "counter"
    CQRS_TRACKED_FIELDS = "__all__"

    name = models.CharField(max_length=100)
    hits = models.IntegerField(default=0)


class ShelfQuerySet(models.QuerySet):
    def named(self, prefix):
        return self.filter(name__startswith=prefix)


class ShelfManager(models.Manager.from_queryset(ShelfQuerySet)):
    """A custom default manager with a queryset of its own, as projects write them."""


class Shelf(MasterMixin, models.Model):
    """A master with a custom manager, reached from Author through a related manager."""

    CQRS_ID = "shelf"

    name = models.CharField(max_length=100)
    size = models.IntegerField(default=0)
    author = models.ForeignKey(Author, null=True, related_name="shelves",
                               on_delete=models.CASCADE)

    shelves = ShelfManager()
