"""django-cqrs's master model for the write benchmark: the columns of our Author."""

from dj_cqrs.mixins import MasterMixin
from django.db import models


class BenchAuthor(MasterMixin, models.Model):
    CQRS_ID = "bench_author"

    name = models.CharField(max_length=100)
