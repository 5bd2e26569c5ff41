"""The `cqrs` manager of master models."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from cqrs_outbox.master import signals, tracker


class MasterManager(models.Manager):
    """Adds bulk operations that write outbox events, like django-cqrs's manager."""

    def bulk_create(self, objs: list, **kwargs: Any) -> list:
        """Create `objs` and write their SAVE events in the same transaction.

        Needs primary keys set by the caller or returned by the database.
        """
        for obj in objs:
            tracker.capture(obj, first_in_transaction=True)
        from cqrs_outbox.master import capture

        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, **kwargs)
            if created:
                # A capturing queryset queued the rows' events already; the signal still
                # goes to every receiver, and ours then has nothing to add.
                queued = isinstance(self.get_queryset(), capture.CapturingQuerySet) and (
                    capture.captures(self.model))
                with signals.queued_already(created if queued else None):
                    self.model.call_post_bulk_create(created, using=self.db)
        return created

    def bulk_update(self, queryset: models.QuerySet, **kwargs: Any) -> int:
        """Update the rows of `queryset` with `kwargs` and write one SAVE event each."""
        model = queryset.model
        from cqrs_outbox.master import capture

        if isinstance(queryset, capture.CapturingQuerySet) and capture.captures(model):
            return queryset.update(**kwargs)  # writes the events itself
        with transaction.atomic(using=queryset.db, savepoint=False):
            ids = list(queryset.values_list("pk", flat=True))
            before = {}
            if hasattr(model, "CQRS_TRACKED_FIELDS") and model.CQRS_TRACKED_FIELDS is not None:
                rows = model._default_manager.using(queryset.db).filter(pk__in=ids)
                before = {o.pk: o for o in rows}
            result = queryset.update(
                cqrs_revision=F("cqrs_revision") + 1, cqrs_updated=timezone.now(), **kwargs
            )
            objs = list(model._default_manager.using(queryset.db).filter(pk__in=ids))
            for obj in objs:
                if obj.pk in before:
                    tracker.carry_over(before[obj.pk], obj)
            model.call_post_update(objs, using=queryset.db)
        return result
