"""The registering metaclasses at django-cqrs's import path (`dj_cqrs.metas`)."""

from cqrs_outbox.master.metas import MasterMeta
from cqrs_outbox.replica.metas import ReplicaMeta

__all__ = ["MasterMeta", "ReplicaMeta"]
