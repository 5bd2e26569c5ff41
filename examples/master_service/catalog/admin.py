"""Admin of the master models. The outbox itself appears under "CQRS outbox".

`CQRSAdminMasterSyncMixin` adds the action "Sync selected ... via CQRS", which resends
the selected rows to every replica through the outbox.
"""

from django.contrib import admin

from catalog import models
from cqrs_outbox.admin import CQRSAdminMasterSyncMixin


@admin.register(models.Publisher)
class PublisherAdmin(CQRSAdminMasterSyncMixin, admin.ModelAdmin):
    list_display = ("id", "name", "website", "cqrs_revision", "cqrs_updated")
    search_fields = ("name",)
    readonly_fields = ("cqrs_revision", "cqrs_updated")


@admin.register(models.Book)
class BookAdmin(CQRSAdminMasterSyncMixin, admin.ModelAdmin):
    list_display = ("id", "title", "publisher", "price", "is_draft", "cqrs_revision")
    list_filter = ("is_draft", "publisher")
    search_fields = ("title", "isbn")
    readonly_fields = ("cqrs_revision", "cqrs_updated")
