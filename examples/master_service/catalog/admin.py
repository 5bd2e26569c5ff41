"""Admin of the master models. The outbox itself appears under "CQRS outbox"."""

from django.contrib import admin

from catalog import models


@admin.register(models.Publisher)
class PublisherAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "website", "cqrs_revision", "cqrs_updated")
    search_fields = ("name",)
    readonly_fields = ("cqrs_revision", "cqrs_updated")


@admin.register(models.Book)
class BookAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "publisher", "price", "is_draft", "cqrs_revision")
    list_filter = ("is_draft", "publisher")
    search_fields = ("title", "isbn")
    readonly_fields = ("cqrs_revision", "cqrs_updated")
