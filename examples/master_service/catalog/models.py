"""The catalog this service owns; replicas keep read-only copies of it.

`MasterMixin` adds `cqrs_revision` and `cqrs_updated`, and every save or delete writes an
event row into the outbox in the same transaction as the change.
"""

from django.db import models

from cqrs_outbox.mixins import MasterMixin


class Publisher(MasterMixin, models.Model):
    """Published with every field, by field name (no serializer)."""

    CQRS_ID = "publisher"

    name = models.CharField(max_length=200)
    website = models.URLField(blank=True, default="")

    def __str__(self) -> str:
        return self.name


class Book(MasterMixin, models.Model):
    """Published through a serializer that flattens the publisher into the event."""

    CQRS_ID = "book"
    CQRS_SERIALIZER = "catalog.serializers.BookSerializer"
    # Events carry the old price in `previous_data` when it changes.
    CQRS_TRACKED_FIELDS = ["price"]

    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=20, blank=True, default="")
    price = models.DecimalField(max_digits=8, decimal_places=2)
    publisher = models.ForeignKey(Publisher, on_delete=models.PROTECT, related_name="books")
    is_draft = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.title

    def is_sync_instance(self) -> bool:
        """Keep drafts to ourselves: replicas only hear about published books."""
        return not self.is_draft

    @classmethod
    def relate_cqrs_serialization(cls, queryset):
        """Read the publisher in the same query the serializer uses."""
        return queryset.select_related("publisher")
