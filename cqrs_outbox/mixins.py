"""The model mixins at django-cqrs's import path (`dj_cqrs.mixins`).

Master mixins live in `cqrs_outbox.master.mixins`, replica mixins in
`cqrs_outbox.replica.mixins`.
"""

from cqrs_outbox.master.mixins import ALL_BASIC_FIELDS, MasterMixin, RawMasterMixin
from cqrs_outbox.replica.mixins import RawReplicaMixin, ReplicaMixin

__all__ = ["ALL_BASIC_FIELDS", "MasterMixin", "RawMasterMixin", "RawReplicaMixin", "ReplicaMixin"]
