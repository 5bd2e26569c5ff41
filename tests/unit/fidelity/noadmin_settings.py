"""The test project's settings without `django.contrib.admin`."""

from tests.testproject.settings import *  # noqa: F403
from tests.testproject.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django.contrib.admin"]
