"""The Celery tasks' helpers, without a worker."""

import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

tasks = pytest.importorskip("cqrs_outbox.tasks")


@pytest.mark.parametrize("schedule", [tasks.schedule_drain, tasks.schedule_purge])
def test_schedule__without_django_celery_beat_says_what_to_install(monkeypatch, schedule):
    monkeypatch.setitem(sys.modules, "django_celery_beat.models", None)  # import fails
    with pytest.raises(ImproperlyConfigured) as caught:
        schedule()
    message = str(caught.value)
    assert "pip install 'cqrs-outbox[celery]'" in message
    assert "'django_celery_beat' to INSTALLED_APPS" in message
    assert "beat_schedule" in message


def test_schedule__with_django_celery_beat_outside_installed_apps_says_what_to_add():
    pytest.importorskip("django_celery_beat")
    with pytest.raises(ImproperlyConfigured, match="'django_celery_beat' to INSTALLED_APPS"):
        tasks.schedule_drain()  # the test project does not install the app
