"""cqrs-outbox: CQRS data synchronisation between Django services over a transactional outbox.

The Django app. Data flows one way: `master` turns model changes into outbox rows through
the `store`, the relay (`relay/`, free of Django) publishes them, and `replica` applies
them to the read copies. The two sides never import each other. What every part shares,
the wire format and table contract included, is `core`; `store` holds every statement on
the outbox tables, one module per database dialect. Both are free of Django. `ops` holds
the operator tools, a floor above both sides.

At the top is what the whole app shares: settings (`conf`), the model `registry`, the
outbox and tombstone `models` and their migrations, the signing keys of the settings
(`keyring`), `tracing`, the system `checks`, the relay's Django glue (`drain`, `tasks`),
`testing` for users' tests, and django-cqrs's import paths (`mixins`, `metas`,
`managers`, `signals`, `admin`, `utils`), which only re-export.

tests/unit/test_layout.py holds the plan: what each package may import, no import
circles, database names only in the store (and the replica's queries), one name per
module. docs/architecture.md draws it.
"""

__version__ = "0.1.0"
