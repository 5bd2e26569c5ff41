"""The master side: turn model changes into outbox events, written at commit.

Owns the model mixin, meta and manager (`mixins`, `metas`, `managers`), the signal
handlers that queue saves, deletes and bulk writes (`signals`), the field `tracker`,
`serialization`, the event builder (`events`), the outbox writer with its commit-time
flush (`outbox`), `sync` (SYNC events for chosen rows) and the outbox `admin`.

May import Django, the shared modules of the app (`conf`, `registry`, `models`,
`signing`, `tracing`, `progress`, `outbox_db`, `utils`), the shared core and the
relay's store, through which every outbox row is written. Never `cqrs_outbox.replica`
(tests/unit/test_layout.py holds the list).
"""
