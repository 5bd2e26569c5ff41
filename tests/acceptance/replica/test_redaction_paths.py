"""The relay's start-up line and status output print the database URL without its password.

PostgreSQL trusts local connections here, so any password logs in: the relay really
starts with a password-bearing URL, and its INFO lines are read for it.
"""

import subprocess
import sys

import pytest
from django.db import connections

from tests.acceptance.replica import support

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SECRET = "Sup3r#Secret/pw?"
ENCODED = "Sup3r%23Secret%2Fpw%3F"


def _relay(*args):
    done = subprocess.run([sys.executable, "-m", "relay", *args], cwd=support.ROOT,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def _database_url(transactional_db_name):
    return f"postgresql://postgres:{ENCODED}@127.0.0.1:5432/{transactional_db_name}"


def test_relay__info_line_and_status_mask_the_database_password(transactional_db):
    url = _database_url(connections["default"].settings_dict["NAME"])
    exchange = support.unique("redaction_ex")
    try:
        code, out = _relay("--database-url", url, "--broker-url", support.BROKER_URL, "--once",
                           "--exchange", exchange)
    finally:
        cleanup = support.Broker(exchange)
        cleanup.delete()  # the relay declared it
        cleanup.close()
    assert code == 0, out
    assert "database postgresql://postgres:***@127.0.0.1:5432/" in out
    code, status = _relay("--database-url", url, "--status")
    assert code == 0, status
    assert status.startswith("database: postgresql://postgres:***@127.0.0.1:5432/")
    for text in (out, status):
        assert SECRET not in text and ENCODED not in text and "Sup3r" not in text
