"""Queue names and bindings, exactly as django-cqrs declares them."""

from cqrs_outbox import conf
from cqrs_outbox.replica import topology


def test_names__follow_django_cqrs_and_the_dead_letter_setting():
    settings = conf.build({"queue": "orders", "exchange": "ex"})
    assert topology.names(settings) == topology.Names("ex", "orders", "dead_letter_orders",
                                                      "orders.delay")
    custom = conf.build({"queue": "orders", "replica": {"dead_letter_queue": "dlq"}})
    assert topology.names(custom).dead_letter_queue == "dlq"


def test_bindings__broadcast_direct_and_dead_letter_keys_per_cqrs_id():
    names = topology.Names("ex", "q", "dead_letter_q", "q.delay")
    assert topology.bindings(names, ["a", "b"]) == [
        ("q", "a"), ("q", "cqrs.q.a"), ("dead_letter_q", "cqrs.dead_letter_q.a"),
        ("q", "b"), ("q", "cqrs.q.b"), ("dead_letter_q", "cqrs.dead_letter_q.b"),
    ]


def test_delay_queue__dead_letters_back_to_the_work_queue():
    names = topology.Names("ex", "q", "dead_letter_q", "q.delay")
    assert topology.delay_arguments(names) == {
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q"}


def test_names__need_a_queue():
    import pytest

    from cqrs_outbox.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"CQRS\['queue'\] is not set"):
        topology.names(conf.build({}))
