"""A worker process sets the garbage collector for batches, unless the project did."""

import subprocess
import sys

import pytest

from cqrs_outbox.replica import workers

PROBE = """
import gc, sys
from cqrs_outbox.replica import workers
{setup}
before = gc.get_freeze_count()  # not 0 on every Python: 3.12 freezes some at startup
workers.tune_gc()
print(gc.get_threshold(), gc.get_freeze_count() > before, gc.isenabled())
"""


def _after(setup: str) -> str:
    # In a process of its own: freezing this one's objects would outlive the test.
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("older", [(10, 10), (5, 50)])
def test_tune_gc__raises_a_default_young_threshold_and_freezes_what_is_loaded(older):
    setup = f"gc.set_threshold(700, {older[0]}, {older[1]})"
    assert _after(setup) == f"({workers.GC_YOUNG_THRESHOLD}, {older[0]}, {older[1]}) True True"


def test_tune_gc__leaves_a_higher_threshold_as_the_project_set_it():
    higher = workers.GC_YOUNG_THRESHOLD + 1
    assert _after(f"gc.set_threshold({higher}, 3, 4)") == f"({higher}, 3, 4) True True"


def test_tune_gc__leaves_a_disabled_collector_alone():
    assert _after("gc.set_threshold(700, 10, 10); gc.disable()") == "(700, 10, 10) False False"
