"""Broker URLs naming a cluster's nodes, the query parameters they apply, and redaction."""

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import (
    BROKER_OPTIONS,
    parse_broker_url,
    parse_broker_urls,
    password_of,
    redact,
    safe_urls,
    scrub,
)


def _nodes(addresses):
    return [(a.host, a.port, a.user, a.password, a.vhost) for a in addresses]


@pytest.mark.parametrize("value", [
    "amqp://u:p@h1:5681,h2:5682,[::1]:5683/v",
    ["amqp://u:p@h1:5681/v", "amqp://u:p@h2:5682/v", "amqp://u:p@[::1]:5683/v"],
    "amqp://u:p@h1:5681/v,amqp://u:p@h2:5682/v amqp://u:p@[::1]:5683/v",
    ("amqp://u:p@h1:5681,h2:5682/v", "amqp://u:p@[::1]:5683/v"),
])
def test_broker_urls__a_list_a_host_list_or_several_urls_give_every_node_in_order(value):
    assert _nodes(parse_broker_urls(value)) == [
        ("h1", 5681, "u", "p", "v"), ("h2", 5682, "u", "p", "v"), ("::1", 5683, "u", "p", "v")]


def test_broker_urls__a_host_list_shares_user_vhost_and_parameters_with_default_ports():
    [one, two] = parse_broker_urls("amqps://u:pw@a,b:5000/%2F?heartbeat=5&verify=verify_none")
    assert (one.port, two.port) == (5671, 5000)
    assert one.vhost == two.vhost == "/"
    assert one.options == two.options == (("heartbeat", "5"), ("verify", "verify_none"))
    assert safe_urls([one, two]) == (
        "amqps://u:***@a:5671/%2F?heartbeat=5&verify=verify_none, "
        "amqps://u:***@b:5000/%2F?heartbeat=5&verify=verify_none")


@pytest.mark.parametrize("name", BROKER_OPTIONS)
def test_broker_url__every_parameter_it_applies_is_accepted(name):
    value = {"verify": "verify_peer", "locale": "en_US"}.get(name, "3")
    [address] = parse_broker_urls(f"amqps://h/v?{name}={value}")
    assert address.option(name) == value


@pytest.mark.parametrize(("query", "named"), [
    ("heartbeat=10&frobnicate=1", "'frobnicate'"),
    ("ssl_options=%7B%7D", "'ssl_options'"),
    ("password=secret", "'password'"),
    ("heartbeat=often", "'heartbeat'"),
    ("connection_attempts=0", "'connection_attempts'"),
    ("retry_delay=-1", "'retry_delay'"),
    ("socket_timeout=inf", "'socket_timeout'"),
    ("cacertfile=/ca.pem", "'cacertfile' is a TLS option: use an amqps:// URL"),
])
def test_broker_url__a_parameter_it_does_not_apply_is_refused_by_name(query, named):
    with pytest.raises(ConfigurationError) as caught:
        parse_broker_urls(f"amqp://u:pw@h/v?{query}", "CQRS['url']")
    assert str(caught.value).startswith("CQRS['url']: ")
    assert named in str(caught.value)
    assert "secret" not in str(caught.value) and ":pw@" not in str(caught.value)


def test_broker_url__heartbeat_zero_turns_heartbeats_off_and_is_accepted():
    assert parse_broker_url("amqp://h/v?heartbeat=0").option("heartbeat") == "0"


@pytest.mark.parametrize("value", [None, "", [], [""], ["amqp://h/v", 3], {"url": "x"}, 42])
def test_broker_urls__anything_but_urls_is_refused_naming_the_setting(value):
    with pytest.raises(ConfigurationError, match=r"^--broker-url: expected an amqp://"):
        parse_broker_urls(value, "--broker-url")


def test_broker_url__one_node_is_asked_for_and_a_host_list_is_refused():
    with pytest.raises(ConfigurationError, match="the URL of one node"):
        parse_broker_url("amqp://u:secret@a,b/v", "x")


# Each credential shape, and what `redact` makes of it.
SHAPES = {
    "amqp://u:s3cr3t-pw@h1:5672,h2:5673/v?heartbeat=5":
        "amqp://u:***@h1:5672,h2:5673/v?heartbeat=5",
    "postgresql://u@db/app?password=s3cr3t-pw&sslmode=require":
        "postgresql://u@db/app?password=***&sslmode=require",
    "postgresql://u@db/app?sslpassword=s3cr3t-pw":
        "postgresql://u@db/app?sslpassword=***",
    "host=db port=5432 password=s3cr3t-pw dbname=app":
        "host=db port=5432 password=*** dbname=app",
    "host=db password = 's3cr3t-pw with \\' quote' dbname=app":
        "host=db password = *** dbname=app",
    "amqp://a:s3cr3t-pw@h1/v, amqps://b:s3cr3t-pw@h2/v":
        "amqp://a:***@h1/v, amqps://b:***@h2/v",
}


@pytest.mark.parametrize("value", sorted(SHAPES))
def test_redact__masks_every_credential_shape(value):
    assert redact(value) == SHAPES[value]
    assert "s3cr3t" not in redact(f"cannot connect to {value}: refused")
    assert password_of(value).startswith("s3cr3t-pw")


def test_redact__a_list_of_urls_is_joined_with_each_password_masked():
    assert redact(["amqp://a:s3cr3t@h1/v", "amqp://b:s3cr3t@h2/v"]) == (
        "amqp://a:***@h1/v, amqp://b:***@h2/v")


def test_scrub__masks_a_query_password_wherever_a_driver_quotes_it():
    url = "postgresql://u@db/app?password=s3cr3t%2Fpw"
    assert "s3cr3t" not in scrub("FATAL: password s3cr3t/pw rejected", url)


PASSWORD = st.text(string.ascii_letters + string.digits + "#?/@:;,'\"!$%^&*()[]{}<>=+~",
                   min_size=8, max_size=30).filter(lambda p: p.strip() == p)
FORMS = [
    "amqp://user:{}@broker:5672/v",
    "amqp://user:{}@n1:5672,n2:5672/v",
    "postgresql://user:{}@db:5432/app",
    "postgresql://user@db:5432/app?password={}",
    "postgresql://user@db:5432/app?sslmode=verify-full&sslpassword={}",
    "host=db user=x password='{}' dbname=app",
]


@settings(max_examples=300, deadline=None)
@given(password=PASSWORD, form=st.sampled_from(FORMS))
def test_redact__no_password_survives_whatever_characters_it_holds(password, form):
    """Quoted DSN values escape their quotes and backslashes, as libpq reads them."""
    if "'{}'" in form:
        password = password.replace("\\", "").replace("'", "")
        value = form.format(password)
    elif form.startswith("postgresql://user@"):  # `&` would end the parameter
        password = password.replace("&", "")
        value = form.format(password)
    else:
        value = form.format(password)
    assume(password not in form + "error near here")  # found where it is no password
    shown = redact(value) + " " + redact(f"error near {value} here")
    assert password not in shown
