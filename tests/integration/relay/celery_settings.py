"""Settings of the Celery worker the relay's Celery test starts: the test project plus
django-celery-beat, on the test's own database and queue."""

import importlib.util
import os

from tests.testproject.settings import *  # noqa: F403
from tests.testproject.settings import DATABASES, INSTALLED_APPS

# django-celery-beat caps Django below 6.1; the drain task itself needs only Celery.
if importlib.util.find_spec("django_celery_beat") is not None:
    INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]
DATABASES = {
    alias: {**config, "NAME": os.environ.get("CQRS_RELAY_CELERY_DB", config["NAME"])}
    for alias, config in DATABASES.items()
}

CELERY_BROKER_URL = os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CQRS_RELAY_CELERY_QUEUE", "cqrs_relay_test")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
