"""Read-only copies of the master's catalog, kept up to date by `cqrs_consume`.

Each model names the master's CQRS_ID; `ReplicaMixin` adds `cqrs_revision` and
`cqrs_updated`, and an event applies only when its revision is newer than the row's.
"""

from django.db import models

from cqrs_outbox.mixins import ReplicaMixin


class PublisherRef(ReplicaMixin, models.Model):
    """A mapped copy: the master's `name` is stored as `title`, `website` is left out."""

    CQRS_ID = "publisher"
    CQRS_MAPPING = {"id": "id", "name": "title"}

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title


class BookRef(ReplicaMixin, models.Model):
    """Fields named like the keys of the master's BookSerializer; unknown keys are dropped."""

    CQRS_ID = "book"

    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=20, blank=True, default="")
    price = models.DecimalField(max_digits=8, decimal_places=2)
    # The publisher's pk as sent by the master; no foreign key, because the two
    # models' events may arrive in any order.
    publisher = models.IntegerField()
    publisher_name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title
