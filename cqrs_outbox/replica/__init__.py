"""The replica side: decode incoming events, apply them by revision, retry, dead-letter.

Owns the model mixin, meta and manager (`mixins`, `metas`, `managers`); `mapping` maps
bodies (decoded by the core's `wire`) onto replica fields (`nonfinite` says where NaN
and the infinities may go), `rules` decides by revision and the master's clock,
`signatures` applies the signature policy,
`queries` holds the replica's own SQL (locks, revisions, tombstones), `handlers` calls a
model's own `cqrs_save` / `cqrs_delete`, `apply` applies batches, `topology` names and
declares the queues, `transport` is the broker as the consumer sees it (with an
in-memory stub), `broker` its RabbitMQ implementation, `consumer` runs the loop,
`workers` supervises worker processes and `dead_letters` retries, dumps or purges dead
letters.

May import Django, the shared modules of the app (`conf`, `registry`, `models`,
`signing`, `tracing`), the shared core and the relay's metrics and probes. Never
`cqrs_outbox.master` (tests/unit/test_layout.py holds the list).
"""
