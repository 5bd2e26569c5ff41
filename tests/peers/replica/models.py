"""django-cqrs replica models of our test project's masters (tests.testproject.master)."""

from dj_cqrs.mixins import ReplicaMixin
from django.db import models


class AuthorRef(ReplicaMixin):
    CQRS_ID = "author"

    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=100)


class PublisherRef(ReplicaMixin):
    """Replica of a master with CQRS_SERIALIZER."""

    CQRS_ID = "publisher"

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=100)
    books = models.IntegerField()


class TrackedRef(ReplicaMixin):
    """Mapped: the master's `name` and `status` land in `title` and `state`."""

    CQRS_ID = "tracked"
    CQRS_MAPPING = {"id": "id", "name": "title", "status": "state"}

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=100)
    state = models.CharField(max_length=20)


class AllFieldsRef(ReplicaMixin):
    """Every basic field type our master sends (the foreign key kept as a plain id)."""

    CQRS_ID = "all_fields"

    id = models.IntegerField(primary_key=True)
    int_field = models.IntegerField()
    bool_field = models.BooleanField()
    char_field = models.CharField(max_length=100)
    text_field = models.TextField()
    date_field = models.DateField(null=True)
    datetime_field = models.DateTimeField(null=True)
    decimal_field = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    float_field = models.FloatField(null=True)
    url_field = models.URLField()
    uuid_field = models.UUIDField(null=True)
    json_field = models.JSONField(null=True)
    author = models.IntegerField(null=True)
