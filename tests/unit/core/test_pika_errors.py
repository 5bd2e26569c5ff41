"""One translation of pika's errors, shared by the relay and the consumer: fatal or not."""

import pytest
from pika import exceptions as pika_exceptions

from cqrs_outbox.core import pika_errors
from cqrs_outbox.core.errors import (
    AccessRefused,
    BrokerUnavailable,
    ConfigurationError,
    MessageRejected,
)
from cqrs_outbox.core.urls import parse_broker_url

ADDRESS = parse_broker_url("amqp://app:pa#ss@rabbit.internal:5672/prod")

CASES = [
    (pika_exceptions.ProbableAuthenticationError(
        "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused'"),
     AccessRefused, ["refused the login of user 'app'", "rabbit.internal:5672", "password"]),
    (pika_exceptions.ProbableAccessDeniedError(
        "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost prod not found'"),
     AccessRefused, ["the vhost 'prod'", "does not exist", "add_vhost"]),
    (pika_exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED - access to vhost 'prod' refused"),
     AccessRefused, ["the vhost 'prod'"]),
    (pika_exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED - no write access"),
     AccessRefused, ["permission to consume", "set_permissions"]),
    (pika_exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg"),
     ConfigurationError, ["refused to consume", "the hint"]),
    (pika_exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown"),
     BrokerUnavailable, ["CONNECTION_FORCED"]),
    (pika_exceptions.StreamLostError("Transport indicated EOF"), BrokerUnavailable, ["EOF"]),
    (ConnectionRefusedError(111, "Connection refused"), BrokerUnavailable, ["refused"]),
    (pika_exceptions.UnroutableError([]), MessageRejected, ["could not route"]),
]


@pytest.mark.parametrize("error, kind, words", CASES, ids=lambda c: type(c).__name__)
def test_translate__sorts_pika_errors_into_fatal_and_recoverable(error, kind, words):
    translated = pika_errors.translate(error, ADDRESS, "consume", "the hint")
    assert type(translated) is kind
    assert pika_errors.is_fatal(translated) == issubclass(kind, ConfigurationError)
    text = str(translated)
    for word in words:
        assert word in text, text
    assert "pa#ss" not in text and "\n" not in text


@pytest.mark.parametrize("code", [311, 406])
def test_translate__a_channel_closed_over_a_message_while_publishing_is_that_message(code):
    closed = pika_exceptions.ChannelClosedByBroker(code, "message size 9000 is too large")
    rejected = pika_errors.translate(closed, ADDRESS, "publish", "the hint", publishing=True)
    assert type(rejected) is MessageRejected
    assert str(rejected) == (
        f"the broker closed the channel over a message: {code} message size 9000 is too large"
    )
    declaring = pika_errors.translate(closed, ADDRESS, "declare", "the hint")
    assert not isinstance(declaring, MessageRejected)


def test_translate__publishing_does_not_excuse_a_refused_permission():
    closed = pika_exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED - no write access")
    assert type(pika_errors.translate(closed, ADDRESS, "publish", publishing=True)) is AccessRefused
