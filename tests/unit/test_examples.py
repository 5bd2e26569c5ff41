"""The example services pass Django's checks and their migrations match their models.

Each runs as its own process with its own settings, as `manage.py` would on a laptop;
nothing here connects to a broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVICES = ["master_service", "replica_service"]
TIMEOUT = 120  # seconds per manage.py run


def manage(service: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python -W error manage.py <args>` in an example service on a fresh SQLite file."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / (service + '.sqlite3')}"
    return subprocess.run(
        [sys.executable, "-W", "error", "manage.py", *args],
        cwd=EXAMPLES / service,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_example__manage_py_check_passes(service: str, tmp_path: Path) -> None:
    result = manage(service, tmp_path, "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_example__migrations_match_the_models(service: str, tmp_path: Path) -> None:
    result = manage(service, tmp_path, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_example__migrate_creates_the_outbox_and_app_tables(service: str, tmp_path: Path) -> None:
    result = manage(service, tmp_path, "migrate", "--noinput")
    assert result.returncode == 0, result.stdout + result.stderr
    result = manage(service, tmp_path, "showmigrations", "cqrs_outbox")
    assert "[X] 0001_initial" in result.stdout
    assert "[ ]" not in result.stdout
