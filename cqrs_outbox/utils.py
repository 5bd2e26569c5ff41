"""What django-cqrs users import from `dj_cqrs.utils` (re-exports; the work is in
`cqrs_outbox.master.relate`)."""

from cqrs_outbox.master.relate import bulk_relate_cqrs_serialization

__all__ = ["bulk_relate_cqrs_serialization"]
