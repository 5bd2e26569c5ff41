"""The master side: turn model changes into outbox events, written at commit.

Owns the model mixin, meta and manager (`mixins`, `metas`, `managers`), the signal
handlers that queue saves, deletes and bulk writes (`signals`), the ORM's bulk paths
(`capture`), the field `tracker`, `serialization` (with `relate`, the bulk reads of
`bulk_relate_cqrs_serialization`), the event builder (`events`), the outbox writer with
its commit-time flush (`outbox`), row `locking`, and the database safety net for writes
outside the ORM (`triggers` installs it, `outside` turns its records into events).

May import Django, the app's shared modules (`conf`, `registry`, `models`, `keyring`,
`tracing`), the core and the store, through which every outbox row is written. Never
`cqrs_outbox.replica`, `cqrs_outbox.ops` or `relay` (tests/unit/test_layout.py).
"""
