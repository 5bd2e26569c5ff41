"""A configuration that cannot work stops the process when Django sets up, as
django-cqrs's does, with the message `manage.py check` gives."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks

ROOT = Path(__file__).resolve().parents[3]


def _start(case: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.unit.fidelity.startup_settings",
        "CQRS_STARTUP_CASE": case,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_startup__sound_settings_start():
    run = _start("")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "started"


def test_startup__replica_models_without_queue_fail_with_the_check_message():
    run = _start("no_queue")
    assert run.returncode == 1
    assert "started" not in run.stdout
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: CQRS['queue'] is not "
                           "set, but the project has replica models.")
    assert last.endswith("(cqrs_outbox.E016)")


def test_startup__duplicate_cqrs_id_fails_naming_both_models():
    run = _start("duplicate_cqrs_id")
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured: CQRS_ID 'author' is used by two master models" in last
    assert "tests.unit.fidelity.dupapp.models.First" in last
    assert last.endswith("(cqrs_outbox.E011)")


def test_ready__raises_the_same_text_the_check_reports():
    config = apps.get_app_config("cqrs_outbox")
    with override_settings(CQRS={"url": "amqp://h/"}):
        [message] = [m for m in cqrs_checks.check_settings() if m.id == "cqrs_outbox.E016"]
        with pytest.raises(ImproperlyConfigured) as raised:
            config.ready()
        with pytest.raises(SystemCheckError, match=r"cqrs_outbox\.E016"):
            call_command("check")
    assert str(raised.value) == f"{message.msg} HINT: {message.hint} (cqrs_outbox.E016)"
