"""`CQRS['url']` naming a cluster's nodes, and check messages that never show a password."""

import pytest
from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox import conf
from cqrs_outbox.core import amqp
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import parse_broker_url
from cqrs_outbox.replica import broker
from relay import pika_publisher

SECRET = "Sup3rSecret"


@pytest.mark.parametrize("url", [
    [f"amqp://u:{SECRET}@n1:5672/v", f"amqp://u:{SECRET}@n2:5673/v"],
    f"amqp://u:{SECRET}@n1:5672,n2:5673/v",
    (f"amqp://u:{SECRET}@n1:5672/v", f"amqp://u:{SECRET}@n2:5673/v"),
])
def test_url__a_list_or_a_host_list_gives_every_node_and_passes_the_checks(url):
    settings = conf.build({"url": url, "queue": "q"})
    assert [(a.host, a.port) for a in settings.addresses] == [("n1", 5672), ("n2", 5673)]
    assert settings.broker == settings.addresses[0]
    with override_settings(CQRS={"url": url, "queue": "q"}):
        assert cqrs_checks.check_settings() == []


def test_url__host_and_port_keys_give_one_node():
    settings = conf.build({"host": "rabbit", "port": 5673, "queue": "q"})
    assert [(a.host, a.port) for a in settings.addresses] == [("rabbit", 5673)]


@pytest.mark.parametrize(("url", "says"), [
    (f"amqp://u:{SECRET}@h/v?heartbeat=10&nonsense=1", "'nonsense'"),
    ([f"amqp://u:{SECRET}@h/v", f"http://u:{SECRET}@h/v"], "scheme must be amqp or amqps"),
    (f"amqp://u:{SECRET}@h/v?cacertfile=/ca.pem", "is a TLS option"),
])
def test_url__a_bad_node_or_parameter_is_e006_naming_it_without_the_password(url, says):
    with override_settings(CQRS={"url": url, "queue": "q"}):
        messages = cqrs_checks.check_settings()
    assert [m.id for m in messages] == ["cqrs_outbox.E006"]
    assert says in messages[0].msg
    assert SECRET not in f"{messages[0].msg} {messages[0].hint}"
    with pytest.raises(ConfigurationError) as caught:
        conf.build({"url": url, "queue": "q"})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("cqrs", [
    {"url": [f"amqp://u:{SECRET}@h/v", 5], "queue": "q"},
    {"url": {"host": "h", "password": SECRET}, "queue": "q"},
    {"password": SECRET.encode(), "queue": "q"},
    {"password": [SECRET], "queue": "q"},
])
def test_wrong_type__e004_quotes_the_value_without_any_password(cqrs):
    with override_settings(CQRS=cqrs):
        messages = cqrs_checks.check_settings()
    assert [m.id for m in messages] == ["cqrs_outbox.E004"]
    assert "has the wrong type" in messages[0].msg
    assert SECRET not in f"{messages[0].msg} {messages[0].hint}"


def test_connection_defaults__one_set_for_both_processes_the_replica_with_a_longer_heartbeat():
    """The relay and the replica start from the same settings; only the heartbeat
    differs, and the URL's query still beats it."""
    relay_side = pika_publisher.PikaPublisher(parse_broker_url("amqp://h/v"))._parameters()
    replica_side = amqp.parameters(parse_broker_url("amqp://h/v"), broker.DEFAULTS, "r")
    for name in ("blocked_connection_timeout", "connection_attempts", "socket_timeout",
                 "stack_timeout"):
        assert getattr(relay_side, name) == getattr(replica_side, name), name
    assert (relay_side.heartbeat, replica_side.heartbeat) == (30, 60)
    url = parse_broker_url("amqp://h/v?heartbeat=7")
    assert amqp.parameters(url, broker.DEFAULTS, "r").heartbeat == 7
