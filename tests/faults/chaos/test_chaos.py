"""The fast chaos profile: writers, two relays and two consumers under kills and cuts."""

import pytest

from tests.faults.chaos import harness

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.slow]


def test_chaos__replica_equals_master_after_kills_and_cuts(tmp_path, record_property):
    report = harness.run(harness.FAST, tmp_path / "logs")
    print("\n" + "\n".join(report.lines()))
    for name, value in (("kills", sum(report.kills.values())),
                        ("cuts", sum(report.cuts.values())),
                        ("duplicates", report.duplicates),
                        ("events", report.figures.get("events written", 0))):
        record_property(name, value)
    assert report.kills and report.cuts, "the monkey never struck"
    assert report.figures.get("events written", 0) > 0
    assert report.passed, "\n".join(report.lines())
