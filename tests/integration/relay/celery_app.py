"""The Celery app of the relay's Celery test: `celery -A tests.integration.relay.celery_app`."""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.relay.celery_settings")
django.setup()

app = Celery("cqrs_relay_test")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("cqrs_outbox.tasks",)
