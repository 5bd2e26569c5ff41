"""The modules django-cqrs users import from import where django-cqrs's do."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dj_cqrs import utils as their_utils

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
