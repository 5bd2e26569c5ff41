"""The outbox relay: drains committed CQRS events to RabbitMQ. Imports nothing from Django."""
