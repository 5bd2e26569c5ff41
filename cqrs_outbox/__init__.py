"""cqrs-outbox: CQRS data synchronisation between Django services over a transactional outbox.

The Django app. Data flows one way: `master` turns model changes into outbox rows, the
relay (`relay/`, free of Django) publishes them, and `replica` applies them to the read
copies. The two sides never import each other. What all three share, the wire format
and table contract included, is `core`, free of Django too.

Owned here, at the top, is what both sides and the commands share: settings (`conf`),
the model `registry`, the outbox and tombstone `models` and their migrations, event
`signing`, `tracing`, and the system `checks`; the relay's Django glue (`outbox_db`,
`drain`, `tasks`, `startup`); the helpers of the dump and diff commands (`dumps`,
`diffs`, `progress`); `testing` for users' tests; and django-cqrs's import paths
(`mixins`, `metas`, `managers`, `signals`, `admin`, `utils`), the first five only
re-exporting from the sides.

These modules may import Django, `relay/` and each other. Those both sides use import
neither side (tests/unit/test_layout.py); the re-exports, `checks`, `testing` and the
command helpers, which serve both sides' commands, may import either.
"""

__version__ = "0.1.0"
