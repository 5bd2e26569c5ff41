"""The test project with the LOGGING a new `startproject` has: Django's defaults only."""

from tests.testproject.settings import *  # noqa: F401,F403

LOGGING = {}
