"""Admin of the replica models: read-only, since the master owns the data."""

from django.contrib import admin

from library import models


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.PublisherRef)
class PublisherRefAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "cqrs_revision", "cqrs_updated")
    search_fields = ("title",)


@admin.register(models.BookRef)
class BookRefAdmin(ReadOnlyAdmin):
    list_display = ("id", "title", "publisher_name", "price", "cqrs_revision", "cqrs_updated")
    search_fields = ("title", "isbn")
