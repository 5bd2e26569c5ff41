"""The admin at django-cqrs's import path (`dj_cqrs.admin`).

Importing it registers the outbox admin (`cqrs_outbox.ops.admin`), as Django's admin
autodiscovery expects of an app's `admin` module.
"""

from cqrs_outbox.ops.admin import CQRSAdminMasterSyncMixin, OutboxEventAdmin

__all__ = ["CQRSAdminMasterSyncMixin", "OutboxEventAdmin"]
