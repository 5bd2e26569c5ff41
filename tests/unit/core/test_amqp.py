"""Connection parameters from a broker URL, nodes taken in turn, silence on the link."""

import ssl
import time

import pytest

from cqrs_outbox.core import amqp
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import parse_broker_url, parse_broker_urls

DEFAULTS = {"heartbeat": 30, "connection_attempts": 1, "socket_timeout": 10.0}


def test_parameters__the_urls_query_beats_the_defaults_and_the_rest_stay():
    address = parse_broker_url(
        "amqp://u:p%40ss@h:5673/v%2Fx?heartbeat=5&connection_attempts=3&retry_delay=0.5"
        "&blocked_connection_timeout=7&channel_max=9&frame_max=131072&locale=fr_FR")
    params = amqp.parameters(address, DEFAULTS, "me")
    assert (params.host, params.port, params.virtual_host) == ("h", 5673, "v/x")
    assert (params.credentials.username, params.credentials.password) == ("u", "p@ss")
    assert (params.heartbeat, params.connection_attempts, params.retry_delay) == (5, 3, 0.5)
    assert params.socket_timeout == 10.0  # not in the URL: the default
    assert (params.blocked_connection_timeout, params.channel_max) == (7.0, 9)
    assert (params.frame_max, params.locale) == (131072, "fr_FR")
    assert params.client_properties == {"connection_name": "me"}
    assert params.ssl_options is None


def test_parameters__amqps_verifies_the_broker_by_default_and_names_it_for_sni():
    params = amqp.parameters(parse_broker_url("amqps://u:p@rabbit.example/v"), DEFAULTS, "me")
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert params.ssl_options.server_hostname == "rabbit.example"


def test_parameters__tls_options_turn_verification_off_and_set_the_server_name():
    address = parse_broker_url(
        "amqps://u:p@10.0.0.1/v?verify=verify_none&server_name_indication=rabbit.internal")
    options = amqp.parameters(address, DEFAULTS, "me").ssl_options
    assert options.context.verify_mode == ssl.CERT_NONE
    assert not options.context.check_hostname
    assert options.server_hostname == "rabbit.internal"


def test_parameters__a_tls_file_that_cannot_be_read_is_a_configuration_error(tmp_path):
    address = parse_broker_url(f"amqps://u:secret@h/v?cacertfile={tmp_path}/missing.pem")
    with pytest.raises(ConfigurationError, match="cannot load the TLS files of") as caught:
        amqp.parameters(address, DEFAULTS, "me")
    assert "secret" not in str(caught.value)


def test_nodes__a_failure_moves_to_the_next_node_and_wraps_around():
    nodes = amqp.Nodes(parse_broker_urls("amqp://h1,h2,h3/v"))
    seen = []
    for _ in range(4):
        seen.append(nodes.current.host)
        nodes.failed()
    assert seen == ["h1", "h2", "h3", "h1"]
    assert len(nodes) == 3


def test_heartbeat_of__the_url_parameter_else_the_default():
    assert amqp.heartbeat_of(parse_broker_url("amqp://h/v?heartbeat=4"), 30) == 4
    assert amqp.heartbeat_of(parse_broker_url("amqp://h/v"), 30) == 30


def test_silence__counts_from_the_last_byte_received_and_never_fires_without_heartbeats():
    silence = amqp.Silence(0.2)
    silence.heard(100)
    assert silence.exceeded() is None
    time.sleep(0.25)
    silence.heard(100)  # nothing new arrived
    assert silence.exceeded() > 0.2
    silence.heard(108)  # a heartbeat frame
    assert silence.exceeded() is None
    off = amqp.Silence(0)
    time.sleep(0.01)
    assert off.exceeded() is None

