"""Our outbox bodies have the keys and value forms django-cqrs publishes for the same rows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cqrs_outbox.models import OutboxEvent
from tests.integration.master.djcqrs_peer import scenario
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]
VARYING = {"cqrs_updated", "expires"}  # timestamps of the moment each side ran


def _django_cqrs_bodies(tmp_path):
    env = dict(os.environ, PEER_DB=str(tmp_path / "peer.sqlite3"), PYTHONPATH=str(ROOT))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.master.djcqrs_peer.dump"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(result.stdout)


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VARYING}
    return value


def test_bodies__same_keys_and_value_forms_as_django_cqrs(tmp_path):
    theirs = _django_cqrs_bodies(tmp_path)
    scenario.run(models)
    payloads = OutboxEvent.objects.order_by("id").values_list("payload", flat=True)
    ours = [json.loads(p) for p in payloads]
    assert [(b["signal_type"], b["cqrs_id"]) for b in ours] == [
        (b["signal_type"], b["cqrs_id"]) for b in theirs
    ]
    for our_body, their_body in zip(ours, theirs, strict=True):
        assert _shape(our_body) == _shape(their_body), our_body["cqrs_id"]
        assert _stable(our_body) == _stable(their_body), our_body["cqrs_id"]
