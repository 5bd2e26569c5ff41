"""The Celery app of the relay's Celery test: `celery -A tests.integration.relay.celery_app`."""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.relay.celery_settings")
django.setup()

app = Celery("cqrs_relay_test")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("cqrs_outbox.tasks",)


@app.task(name="tests.pending_now")
def pending_now() -> int:
    """Log how many events are pending when the worker gets to this task."""
    from cqrs_outbox.core import contract
    from cqrs_outbox.models import OutboxEvent

    pending = OutboxEvent.objects.filter(status=contract.STATUS_PENDING).count()
    print(f"pending now: {pending}", flush=True)
    return pending
