"""The modules django-cqrs users import from import where django-cqrs's do."""

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dj_cqrs import utils as their_utils
from django.dispatch import Signal

from cqrs_outbox import utils

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import django
django.setup()
from django.apps import apps
assert not apps.is_installed("django.contrib.admin")
from {module} import CQRSAdminMasterSyncMixin
print("imported", CQRSAdminMasterSyncMixin.__name__)
"""


@pytest.mark.parametrize("module", ["dj_cqrs.admin", "cqrs_outbox.admin"])
def test_admin_module__imports_without_django_contrib_admin(module):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module)], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.unit.fidelity.noadmin_settings"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "imported CQRSAdminMasterSyncMixin"


def test_bulk_relate_cqrs_serialization__same_signature_as_django_cqrs():
    ours = inspect.signature(utils.bulk_relate_cqrs_serialization)
    theirs = inspect.signature(their_utils.bulk_relate_cqrs_serialization)
    assert list(ours.parameters) == list(theirs.parameters) == ["cqrs_id"]
    assert ours.parameters["cqrs_id"].default is theirs.parameters["cqrs_id"].default is None


@pytest.mark.parametrize("name", ["mixins", "metas", "managers", "signals", "admin"])
def test_import_paths__every_class_and_signal_of_django_cqrs_is_there(name):
    # Signals are compared where django-cqrs defines them; its mixins merely import them.
    theirs = importlib.import_module(f"dj_cqrs.{name}")
    ours = importlib.import_module(f"cqrs_outbox.{name}")
    public = [
        key for key, value in vars(theirs).items()
        if not key.startswith("_")
        and (getattr(value, "__module__", None) == theirs.__name__
             or (isinstance(value, Signal) and name == "signals"))
    ]
    assert public, f"dj_cqrs.{name} defines nothing to compare"
    assert [key for key in public if not hasattr(ours, key)] == []
