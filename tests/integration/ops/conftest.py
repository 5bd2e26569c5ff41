"""Fixtures of the operator tools' tests: users with and without the replay permission."""

import io
import json
import os
import pathlib
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from cqrs_outbox.models import OutboxEvent


def _user(username, *codenames):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label="cqrs_outbox", codename__in=codenames)
    assert perms.count() == len(codenames)
    user.user_permissions.add(*perms)
    return user


@pytest.fixture
def viewer_client(client):
    """A staff member who may view outbox events, nothing more."""
    client.force_login(_user("viewer", "view_outboxevent"))
    return client


@pytest.fixture
def operator_client(client):
    """A staff member who may view, replay and retry outbox events."""
    client.force_login(_user("operator", "view_outboxevent", "replay_outboxevent"))
    return client


@pytest.fixture
def outbox_rows():
    """Return a function listing the outbox rows, oldest first, with their decoded body."""

    def rows(using="default"):
        return [
            dict(e, body=json.loads(e["payload"]))
            for e in OutboxEvent.objects.using(using).order_by("id").values()
        ]

    return rows


@pytest.fixture
def manage(settings):
    """Return a function running `python -m django <args>` against the test databases.

    The child sees the databases pytest-django created (their names carry `test_`), so
    it needs committed data: use it from `transaction=True` tests.
    """

    def run(*args, stdin=None, env=None):
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=child_env(env),
            timeout=120,
        )

    return run


ROOT = pathlib.Path(__file__).resolve().parents[3]


def child_env(extra=None):
    """Return the environment of a child process pointed at this run's test databases."""
    from django.conf import settings

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.testproject.settings")
    env["CQRS_TEST_DB_NAME"] = "test_" + settings.DB_NAME
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def run_command(name, *args, stdin=None):
    """Run a management command in this process; return its stdout and stderr text."""
    out, err = io.StringIO(), io.StringIO()
    kwargs = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(name, *args, stdout=out, stderr=err, **kwargs)
    return out.getvalue(), err.getvalue()
