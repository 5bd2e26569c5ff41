"""Without chromium the admin's browser test fails with the install hint and leaks nothing."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
BROWSER_TEST = "tests/integration/ops/test_admin_browser.py"


def _processes_marked(marker):
    """Return the pids whose environment carries `marker` (children inherit it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_admin_browser_test__without_chromium_fails_leaving_no_directory_or_process(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    marker = f"CQRS_LEAK_MARK={uuid.uuid4().hex}"
    # A run of its own: names of this run in the environment would make the inner
    # pytest-django recreate, then drop, the outer run's test database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQRS_TEST_")}
    env.update(TMPDIR=str(temp), CQRS_CHROMIUM=str(tmp_path / "no-chromium"),
               CQRS_TEST_DB="postgres", CQRS_LEAK_MARK=marker.split("=")[1])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", BROWSER_TEST],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout
    assert "install Debian's chromium: apt-get install chromium" in result.stdout
    assert "1 failed" in result.stdout.splitlines()[-1]
    assert list(temp.iterdir()) == []  # no chromium profile left behind
    assert _processes_marked(marker.encode()) == []  # no chromedriver left running
