"""cqrs-outbox: CQRS data synchronisation between Django services over a transactional outbox."""

__version__ = "0.1.0"
