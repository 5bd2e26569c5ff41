"""Configuration messages name the setting really at fault and what to do."""

from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox.replica import topology

DIRECT = ("PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in vhost "
          "'/': received 'topic' but current is 'direct'")


def test_empty_queue__says_it_must_not_be_empty():
    with override_settings(CQRS={"url": "amqp://guest:guest@h/", "queue": ""}):
        messages = cqrs_checks.check_settings()
    [message] = [m for m in messages if "queue" in m.msg]
    assert message.msg == "CQRS['queue'] must not be empty."
    assert message.id == "cqrs_outbox.E004"
    assert "non-empty string" in message.hint


def test_exchange_of_another_type__names_the_exchange_its_type_and_the_fix():
    text = str(topology.exchange_refused("amq.direct", DIRECT))
    assert "CQRS['exchange'] names exchange 'amq.direct', which exists as a direct exchange" in text
    assert "durable topic exchange" in text and "CQRS['queue']" not in text


def test_exchange_not_durable__names_the_property():
    reply = DIRECT.replace("'type'", "'durable'").replace("current is 'direct'",
                                                           "current is 'false'")
    assert "exists with durable = false" in str(topology.exchange_refused("events", reply))
