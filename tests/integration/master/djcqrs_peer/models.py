"""The master test models again, on django-cqrs's mixins."""

import uuid

from dj_cqrs.mixins import MasterMixin
from django.db import models


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
