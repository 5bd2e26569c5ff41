from tests.integration.relay.conftest import collector, exchange, relays  # noqa: F401
