"""The master's signals at django-cqrs's import path (`dj_cqrs.signals`)."""

from cqrs_outbox.master.signals import MasterSignals, post_bulk_create, post_update

__all__ = ["MasterSignals", "post_bulk_create", "post_update"]
