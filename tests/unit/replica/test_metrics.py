"""Replica metrics labels: why an event was skipped, why a message was dead-lettered."""

import sys

import pytest
from django.core.management import CommandError, call_command

from cqrs_outbox.replica import rules, telemetry


@pytest.mark.parametrize(("signal", "revision", "state", "reason"), [
    ("SAVE", 3, rules.State(row=3), "duplicate"),
    ("SAVE", 2, rules.State(row=3), "stale"),
    ("SYNC", 2, rules.State(row=3), "stale"),
    ("DELETE", 4, rules.State(tombstone=4), "duplicate"),
    ("SAVE", 3, rules.State(tombstone=4), "tombstoned"),
])
def test_skip_reason__names_a_redelivery_at_the_held_revision_a_duplicate(
        signal, revision, state, reason):
    verdict = rules.decide(signal, revision, state)
    assert rules.skip_reason(verdict, revision, state) == reason


@pytest.mark.parametrize(("reason", "label"), [
    ("bad message: body is not JSON", "bad_message"),
    ("bad message: no replica model has cqrs_id 'x'", "bad_message"),
    ("expired at 2000-01-01T00:00:00+00:00", "expired"),
    ("failed after 30 retries: ValueError: x", "retries_exhausted"),
    ("failed (ValueError: x) and the retry policy raised KeyError()", "retry_policy_error"),
    ("something new", "other"),
])
def test_dead_reason__maps_each_dead_letter_reason_to_a_label_class(reason, label):
    assert telemetry.dead_reason(reason) == label


def test_consumer_without_metrics_port__records_nothing():
    assert type(telemetry.observer("q")) is telemetry.Observer


def test_cqrs_consume__metrics_port_without_prometheus_client_says_what_to_install(
        monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(CommandError) as error:
        call_command("cqrs_consume", "--metrics-port", "9187")
    assert str(error.value) == (
        "metrics need prometheus-client, which is not installed: "
        "pip install 'cqrs-outbox[metrics]'"
    )
