"""Django admin for the outbox, and the "Sync selected via CQRS" and "Repair selected ... on
replicas" actions for master models.

The outbox list must open fast on a table of millions of rows: it never counts the whole
table on a page load (past EXACT_COUNT_LIMIT rows PostgreSQL's planner estimate is shown
instead), its cqrs_id filter takes its choices from the registry instead of a DISTINCT
over the table, facet counts are off, and the summary's count of failed events runs on
a partial index (migration 0005). bench/admin.py measures it on a million rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.paginator import Paginator
from django.db import connections, models, router, transaction
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html

from cqrs_outbox import store
from cqrs_outbox.core import contract
from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.ops import sync
from cqrs_outbox.registry import MasterRegistry

logger = logging.getLogger(__name__)

EXACT_COUNT_LIMIT = 10000  # rows; above this the list shows the planner's estimate
PER_PAGE = 100  # rows per list page
ACTION_LIMIT = 10000  # events one replay or retry action may take
ACTION_CHUNK = 1000  # ids per statement inside an action's transaction
ERROR_PREVIEW = 80  # characters of last_error shown in the list
REPLAY_PERMISSION = "cqrs_outbox.replay_outboxevent"


def _register(model: type[models.Model]) -> Any:
    """Register with the default admin site if `django.contrib.admin` is installed.

    A service without the admin can still import the sync mixin from here, as it can
    import `dj_cqrs.admin`.
    """
    if apps.is_installed("django.contrib.admin"):
        return admin.register(model)
    return lambda model_admin: model_admin


class EstimatingPaginator(Paginator):
    """Count exactly up to EXACT_COUNT_LIMIT rows, and estimate beyond on PostgreSQL.

    Counting a million rows on every page load is what makes a large changelist slow;
    the first EXACT_COUNT_LIMIT rows are cheap to count, and past them "about N" serves.
    """

    estimated = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, models.QuerySet):
            return super().count
        bounded = qs.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        if bounded <= EXACT_COUNT_LIMIT:
            return bounded
        estimate = estimated_rows(qs)
        if estimate is None:
            return super().count
        self.estimated = True
        return max(estimate, bounded)


def estimated_rows(qs: models.QuerySet) -> int | None:
    """Return the database's estimate of how many rows `qs` yields, without running it,
    or None where the database has none (SQLite)."""
    return store.row_estimate(
        store.wrap(connections[qs.db]), qs.model._meta.db_table, bool(qs.query.where),
        lambda: qs.order_by().explain(format="json"),
    )


class CQRSIdFilter(admin.SimpleListFilter):
    """Filter by cqrs_id, offering the registered master models (no scan of the table)."""

    title = "CQRS id"
    parameter_name = "cqrs_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        names = set(MasterRegistry.models)
        if self.value():
            names.add(self.value())  # an id no longer registered but asked for in the URL
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value():
            return queryset.filter(cqrs_id=self.value())
        return queryset


class ReturnedFilter(admin.SimpleListFilter):
    """Events the broker returned as unroutable and nobody replayed yet (the partial
    returned index of migration 0012 serves it)."""

    title = "returned by the broker"
    parameter_name = "returned"
    YES = "unroutable"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(self.YES, "returned (unroutable)")]

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        if self.value() == self.YES:
            return queryset.filter(returned_at__isnull=False)
        return queryset


def chunks(ids: Sequence[int], size: int = ACTION_CHUNK) -> Iterator[Sequence[int]]:
    """Yield `ids` in slices of `size`, keeping their order."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _selected_ids(queryset: models.QuerySet) -> list[int]:
    return sorted(queryset.order_by().values_list("id", flat=True)[: ACTION_LIMIT + 1])


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none waiting"
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


@_register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """A read-only view of the outbox with replay and retry for those allowed to."""

    list_display = (
        "id",
        "cqrs_id",
        "instance_pk",
        "signal_type",
        "revision",
        "status",
        "attempts",
        "created_at",
        "published_at",
        "error_preview",
        "signed_by",
    )
    list_display_links = ("id",)
    list_filter = (
        "status",
        ReturnedFilter,
        CQRSIdFilter,
        "signal_type",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=instance_pk", "=correlation_id")
    search_help_text = "Exact instance pk or correlation id (or cqrs_id:pk, e.g. author:42)."
    list_per_page = PER_PAGE
    list_max_show_all = PER_PAGE
    paginator = EstimatingPaginator
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):
        show_facets = admin.ShowFacets.NEVER  # facets count every filter choice
    actions = ("replay_events", "retry_failed")
    fieldsets = (
        (None, {"fields": ("id", "cqrs_id", "instance_pk", "signal_type", "revision")}),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "attempts",
                    "available_at",
                    "created_at",
                    "published_at",
                    "returned_at",
                    "last_error",
                )
            },
        ),
        (
            "Message",
            {
                "fields": (
                    "routing_key",
                    "partition",
                    "correlation_id",
                    "signed_by",
                    "pretty_payload",
                )
            },
        ),
    )
    readonly_fields = (
        "id",
        "cqrs_id",
        "instance_pk",
        "signal_type",
        "revision",
        "status",
        "attempts",
        "available_at",
        "created_at",
        "published_at",
        "returned_at",
        "last_error",
        "routing_key",
        "partition",
        "correlation_id",
        "signed_by",
        "pretty_payload",
    )

    # Events are written by the master side only: nobody adds, edits or deletes them here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        """Tell whether the user may replay and retry events (a permission of its own)."""
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.display(description="last error")
    def error_preview(self, obj: OutboxEvent) -> str:
        text = " ".join(obj.last_error.split())
        return text if len(text) <= ERROR_PREVIEW else text[: ERROR_PREVIEW - 1] + "…"

    @admin.display(description="signed")
    def signed_by(self, obj: OutboxEvent) -> str:
        """Show the key id that signed the event, or that it is unsigned."""
        if not obj.signature:
            return "unsigned"
        parts = obj.signature.split(";")
        return f"signed, key {parts[1]}" if len(parts) == 3 else "signed"

    @admin.display(description="payload")
    def pretty_payload(self, obj: OutboxEvent) -> str:
        try:
            text = json.dumps(json.loads(obj.payload), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.payload
        return format_html('<pre class="cqrs-payload">{}</pre>', text)

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet, search_term: str
    ) -> tuple[models.QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Exact and case-sensitive, so PostgreSQL can use an index where one exists.
        match = models.Q(instance_pk=term) | models.Q(correlation_id=term)
        cqrs_id, sep, pk = term.partition(":")
        if sep and cqrs_id and pk:
            match |= models.Q(cqrs_id=cqrs_id, instance_pk=pk)
        return queryset.filter(match), False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {"cqrs_summary": self.summary(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def summary(self) -> dict:
        """Return the figures shown above the list: pending, failed, returned (with
        their routing keys), oldest pending age."""
        alias = router.db_for_read(OutboxEvent)
        figures = store.summary(store.wrap(connections[alias]))
        return {
            "pending": figures.pending,
            "failed": figures.failed,
            "returned": figures.returned,
            "returned_keys": ", ".join(key for key, _ in figures.returned_by_key),
            "returned_filter": f"?{ReturnedFilter.parameter_name}={ReturnedFilter.YES}",
            "oldest_pending_age": _age(figures.oldest_pending_age()),
            "relays": len({owner.owner for owner in figures.owners}),
            "partitions": len(figures.owners),
        }

    @admin.action(
        description="Replay selected events (publish again, in order)", permissions=["replay"]
    )
    def replay_events(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        ids = self._action_ids(request, queryset)
        if ids:
            count = self._run_in_chunks(queryset.db, store.replay, ids)
            logger.info("Replayed %s outbox events on request of %s", count, request.user)
            self.message_user(
                request,
                f"{count} event(s) queued to be published again, in their original order. "
                "Any the broker had returned as unroutable are no longer counted as returned; "
                "should no queue be bound yet, they come back returned.",
            )

    @admin.action(description="Retry selected failed events", permissions=["replay"])
    def retry_failed(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        ids = self._action_ids(request, queryset)
        if ids:
            count = self._run_in_chunks(queryset.db, store.retry_failed, ids)
            logger.info(
                "Made %s failed outbox events pending on request of %s", count, request.user
            )
            text = f"{count} failed event(s) made pending again."
            if count < len(ids):
                text += f" {len(ids) - count} selected event(s) had not failed and were left alone."
            self.message_user(request, text)

    def _action_ids(self, request: HttpRequest, queryset: models.QuerySet) -> list[int]:
        ids = _selected_ids(queryset)
        if len(ids) > ACTION_LIMIT:
            self.message_user(
                request,
                f"More than {ACTION_LIMIT} events selected: narrow the filter, or resend rows "
                "with `manage.py cqrs_sync`.",
                messages.ERROR,
            )
            return []
        return ids

    @staticmethod
    def _run_in_chunks(alias: str, operation: Any, ids: list[int]) -> int:
        db = store.wrap(connections[alias])
        with transaction.atomic(using=alias):
            return sum(operation(db, chunk) for chunk in chunks(ids))


class CQRSAdminMasterSyncMixin:
    """Add "Sync selected via CQRS" (django-cqrs's name) and "Repair selected ... on
    replicas" to a master model's admin.

    Each writes a SYNC event per selected row into the outbox, reading the rows under
    FOR UPDATE in batches (the repair's marked as repairs); both need the change
    permission on the model.
    """

    cqrs_sync_batch = contract.DEFAULT_BATCH

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict:
        # Django 6.1 passes `action_location` (and warns about overrides without it) and
        # describes actions as objects; earlier releases pass nothing and use tuples.
        extra = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **extra)  # type: ignore[misc]
        if self.actions is None or IS_POPUP_VAR in request.GET:  # type: ignore[attr-defined]
            return actions
        if getattr(action_location, "value", "CHANGE_LIST") != "CHANGE_LIST":
            return actions
        for name in ("sync_items", "repair_items"):
            if name not in actions and self.has_change_permission(request):  # type: ignore[attr-defined]
                action = self.get_action(name)  # type: ignore[attr-defined]
                if action is not None:
                    actions[action[1] if isinstance(action, tuple) else action.name] = action
        return actions

    def _cqrs_sync_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """Adjust the selected rows before they are synced (hook kept from django-cqrs)."""
        return queryset

    @admin.action(description="Sync selected %(verbose_name_plural)s via CQRS")
    def sync_items(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        self._sync(request, queryset, repair=False)

    @admin.action(description="Repair selected %(verbose_name_plural)s on replicas")
    def repair_items(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        """Send repair SYNCs: replicas take them whatever revision their row holds."""
        self._sync(request, queryset, repair=True)

    def _sync(self, request: HttpRequest, queryset: models.QuerySet, repair: bool) -> None:
        qs = self._cqrs_sync_queryset(queryset)
        qs = qs.using(router.db_for_write(qs.model))
        result = sync.sync_queryset(qs, batch=self.cqrs_sync_batch, repair=repair)
        what = "repair on replicas" if repair else "sync"
        text = f"{result.synced} row(s) queued for {what} via the outbox."
        if result.skipped:
            text += f" {result.skipped} row(s) skipped (gone, or not sync instances)."
        if result.failed:
            text += " Failed: " + "; ".join(f"pk={pk}: {why}" for pk, why in result.failed)
        self.message_user(request, text)  # type: ignore[attr-defined]
