"""No password reaches any output: logs, check messages, exceptions, status lines.

Every URL shape is tried on every path that prints a URL or a text quoting one. Passwords
are found on the raw text, so unencoded `#`, `?` and `/` cannot hide them from the mask.
"""

import pytest
from django.test.utils import override_settings
from pika import exceptions as pika_exceptions

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox.core import pika_errors, urls
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.core.urls import parse_broker_url, redact, redact_text, scrub

SECRET = "Sup3rSecret"

# URL -> what `redact` makes of it.
SHAPES = {
    f"amqp://guest:pa#{SECRET}@broker:5672/prod": "amqp://guest:***@broker:5672/prod",
    f"amqp://guest:pa?{SECRET}@broker/prod": "amqp://guest:***@broker/prod",
    f"amqp://guest:pa/{SECRET}@broker/prod": "amqp://guest:***@broker/prod",
    f"amqp://guest:p@{SECRET}@broker/prod": "amqp://guest:***@broker/prod",
    f"amqps://u:{SECRET}@[::1]:5671/prod": "amqps://u:***@[::1]:5671/prod",
    f"amqp://u:{SECRET}@broker/prod?heartbeat=30&retry_delay=1":
        "amqp://u:***@broker/prod?heartbeat=30&retry_delay=1",
    f"amqp://u:{SECRET}%23x@broker/%2F": "amqp://u:***@broker/%2F",
    f"postgresql://postgres:pa/{SECRET}@127.0.0.1:5432/app?sslmode=require":
        "postgresql://postgres:***@127.0.0.1:5432/app?sslmode=require",
}
NO_PASSWORD = ["amqp://broker:5672/prod", "amqp://user@broker/prod", "amqp://[::1]/prod",
               "sqlite:///var/db.sqlite3"]
# A password equal to the host name: masked by position, the host stays readable.
SAME_AS_HOST = ("amqp://u:broker.internal@broker.internal:5672/v",
                "amqp://u:***@broker.internal:5672/v")
AMQP_SHAPES = [url for url in SHAPES if url.startswith("amqp")]


@pytest.mark.parametrize("url", sorted(SHAPES))
def test_redact__masks_the_password_of_every_url_shape(url):
    assert redact(url) == SHAPES[url]
    assert SECRET not in redact_text(f"cannot use {url}, giving up")
    assert SHAPES[url] in redact_text(f"cannot use {url}, giving up")


@pytest.mark.parametrize("url", NO_PASSWORD)
def test_redact__leaves_urls_without_a_password_alone(url):
    assert redact(url) == url


def test_redact__password_equal_to_the_host_name_masks_the_password_only():
    url, expected = SAME_AS_HOST
    assert redact(url) == expected
    assert parse_broker_url(url).safe_url == expected


@pytest.mark.parametrize("url", sorted(AMQP_SHAPES))
def test_broker_address__parses_unencoded_specials_and_prints_no_password(url):
    address = parse_broker_url(url)
    assert SECRET in address.password  # taken as written, so connecting works
    assert SECRET not in address.safe_url
    for error in (pika_errors.login_refused(address), pika_errors.vhost_refused(address)):
        assert SECRET not in str(error)
    closed = pika_exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED")
    assert SECRET not in str(pika_errors.translate(closed, address, "consume"))


@pytest.mark.parametrize("url", sorted(AMQP_SHAPES))
def test_bad_broker_url__error_and_check_e006_print_no_password(url):
    broken = url.replace("@broker", "@broker:notaport").replace("@[::1]:5671", "@[::1]:x")
    with pytest.raises(ConfigurationError) as caught:
        parse_broker_url(broken, "CQRS['url']")
    assert SECRET not in str(caught.value)
    with override_settings(CQRS={"url": broken, "queue": "q"}):
        messages = cqrs_checks.check_settings()
    e006 = [m for m in messages if m.id == "cqrs_outbox.E006"]
    assert e006, messages
    for message in messages:
        assert SECRET not in f"{message.msg} {message.hint}"


def test_driver_error__quoting_pieces_of_a_misread_password_is_scrubbed():
    url = f"postgresql://postgres:pa/{SECRET}@127.0.0.1:5432/app"
    # What libpq says when the unencoded `/` makes it read the password as a host.
    error = Exception(f'invalid integer value "pa/{SECRET}@127.0.0.1:5432" for "port"\nmore')
    text = urls.describe(error, url)
    assert SECRET not in text and "\n" not in text
    assert SECRET not in scrub(f"could not translate host name {SECRET}", url)


def test_one_line__escapes_line_breaks_and_control_characters():
    text = one_line("a\nCRITICAL forged\r\x00\x1b[31m\u2028end")
    assert text == "a\\nCRITICAL forged\\r\\x00\\x1b[31m\\u2028end"
    assert one_line("x" * 10, 4) == "xxxx..."

