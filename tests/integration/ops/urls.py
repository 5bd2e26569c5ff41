"""An admin site where the master model Author uses the CQRS sync mixin."""

from django.contrib import admin
from django.urls import path

from cqrs_outbox.admin import CQRSAdminMasterSyncMixin
from tests.testproject.master import models

site = admin.AdminSite(name="ops_admin")


@admin.register(models.Author, site=site)
class AuthorAdmin(CQRSAdminMasterSyncMixin, admin.ModelAdmin):
    list_display = ("id", "name", "cqrs_revision")


urlpatterns = [path("ops-admin/", site.urls)]
