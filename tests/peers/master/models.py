"""django-cqrs master models with the CQRS_IDs of our test project's replicas."""

from dj_cqrs.mixins import MasterMixin
from django.db import models


class Author(MasterMixin):
    CQRS_ID = "author"

    name = models.CharField(max_length=100)


class Publisher(MasterMixin):
    CQRS_ID = "publisher"
    CQRS_SERIALIZER = "tests.peers.master.serializers.PublisherSerializer"

    name = models.CharField(max_length=100)
    book_count = models.IntegerField(default=0)


class Tracked(MasterMixin):
    """Our replica maps it (CQRS_MAPPING name -> title, status -> state)."""

    CQRS_ID = "tracked"

    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="new")
