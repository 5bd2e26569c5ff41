"""An outage is logged once, a count a minute while it lasts, and its end once."""

import logging

import pytest

from cqrs_outbox.core import outages


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(outages.time, "monotonic", lambda: now[0])
    return now


def _lines(caplog):
    return [record.getMessage() for record in caplog.records]


def test_outage__first_failure_in_full_then_a_summary_per_interval_then_the_end(clock, caplog):
    caplog.set_level(logging.WARNING)
    outage = outages.Outage(logging.getLogger("t"), "broker", interval=60)
    assert outage.failed("retrying with back-off: refused") == 0
    clock[0] += 30
    assert outage.failed("retrying with back-off: refused again") == 1
    clock[0] += 30  # exactly one interval after the first line
    assert outage.failed("retrying with back-off: timed out") == 2
    clock[0] += 59
    outage.failed("retrying with back-off: timed out")
    assert outage.down
    clock[0] += 1
    outage.recovered()
    assert _lines(caplog) == [
        "broker unavailable, retrying with back-off: refused",
        "broker still unavailable: 2 more tries in 60s; last: retrying with back-off: timed out",
        "broker available again after 120.0s (4 tries)",
    ]
    assert not outage.down


def test_outage__recovered_without_failures_says_nothing_and_a_new_outage_starts_afresh(
        clock, caplog):
    caplog.set_level(logging.WARNING)
    outage = outages.Outage(logging.getLogger("t"), "database", interval=60)
    outage.recovered()
    assert _lines(caplog) == []
    outage.failed("gone")
    outage.recovered()
    clock[0] += 5
    assert outage.failed("gone again") == 0
    assert _lines(caplog)[-1] == "database unavailable, gone again"
