"""The Celery app of the example master service: `celery -A master_service.celery worker`.

Tasks are found in the installed apps, so the outbox drain task of `cqrs_outbox` is
registered; the beat schedule that runs it is in settings.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "master_service.settings")

app = Celery("master_service")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
