"""The test project's settings, broken as CQRS_STARTUP_CASE says, for start-up tests."""

import os

from tests.testproject.settings import *  # noqa: F403
from tests.testproject.settings import CQRS, INSTALLED_APPS

CASE = os.environ.get("CQRS_STARTUP_CASE", "")
CQRS = dict(CQRS)
if CASE == "no_queue":
    del CQRS["queue"]
elif CASE == "duplicate_cqrs_id":
    INSTALLED_APPS = [*INSTALLED_APPS, "tests.unit.fidelity.dupapp"]
