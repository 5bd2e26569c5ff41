"""The `cqrs` managers at django-cqrs's import path (`dj_cqrs.managers`)."""

from cqrs_outbox.master.managers import MasterManager
from cqrs_outbox.replica.managers import ReplicaManager

__all__ = ["MasterManager", "ReplicaManager"]
