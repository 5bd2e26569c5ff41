"""A django-cqrs master with the same models as tests.testproject.master, on SQLite."""

import os

SECRET_KEY = "peer"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "dj_cqrs",
    "tests.integration.master.djcqrs_peer",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PEER_DB"]}
}
CQRS = {
    "transport": "tests.integration.master.djcqrs_peer.capture.CaptureTransport",
    "master": {"CQRS_MESSAGE_TTL": 3600},
}
