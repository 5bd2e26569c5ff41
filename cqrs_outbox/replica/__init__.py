"""The replica side: decode incoming events, apply them by revision, retry, dead-letter.

Owns the model mixin, meta and manager (`mixins`, `metas`, `managers`); `mapping` maps
bodies (decoded by the core's `wire`) onto replica fields (`nonfinite` says where NaN
and the infinities may go), `rules` decides by revision and the master's clock,
`signatures` applies the signature policy, `queries` (and `queries_mysql`) holds the
replica's own SQL (locks, revisions, tombstones), `handlers` calls a model's own
`cqrs_save` / `cqrs_delete`, `apply` applies batches, `topology` names and declares the
queues, `transport` is the broker as the consumer sees it (with an in-memory stub),
`broker` its RabbitMQ implementation, `consumer` runs the loop, `workers` supervises
worker processes and `telemetry` counts what they do.

May import Django, the app's shared modules (`conf`, `registry`, `models`, `keyring`,
`tracing`), the core and the store. Never `cqrs_outbox.master`, `cqrs_outbox.ops` or
`relay` (tests/unit/test_layout.py).
"""
