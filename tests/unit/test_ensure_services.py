"""scripts/ensure-services: install what it may, else stop at once with one line.

Nothing shared is touched: services are looked for on closed ports, the browser at paths
that do not exist, and apt-get is a stand-in that only records how it was called.
"""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-services"
CLOSED_PORT = "1"  # nothing listens on port 1


def _run(tmp_path, *pieces, **env):
    base = dict(os.environ, CQRS_CHROMIUM=str(tmp_path / "no-chromium"),
                CQRS_CHROMEDRIVER=str(tmp_path / "no-chromedriver"), PGPORT=CLOSED_PORT,
                MYSQL_TCP_PORT=CLOSED_PORT,
                CQRS_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{CLOSED_PORT}/%2F")
    return subprocess.run(["bash", str(SCRIPT), *pieces], capture_output=True, text=True,
                          env={**base, **env}, timeout=60)


def test_nothing_there_and_no_install__exits_1_with_one_line_naming_each_install(tmp_path):
    result = _run(tmp_path, ENSURE_SERVICES_INSTALL="no")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("ensure-services: missing ")
    for wanted in ("apt-get install chromium chromium-driver",
                   "PostgreSQL on 127.0.0.1:1 (apt-get install postgresql, "
                   "or docker compose up -d postgres)",
                   "MariaDB on 127.0.0.1:1 (apt-get install mariadb-server, "
                   "or docker compose up -d mariadb)",
                   "RabbitMQ on 127.0.0.1:1 (apt-get install rabbitmq-server"):
        assert wanted in line


def test_service_on_another_host__is_only_checked_never_installed(tmp_path):
    result = _run(tmp_path, "postgres", PGHOST="127.0.0.2", ENSURE_SERVICES_INSTALL="no")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ensure-services: missing PostgreSQL on 127.0.0.2:1 (not reachable); "
        "install it as root, or run this as root to let it do so"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path is taken only as root")
def test_root_with_apt__installs_debians_chromium_then_checks_it_is_there(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-calls"
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    result = _run(tmp_path, "chromium", PATH=f"{bin_dir}:{os.environ['PATH']}")
    assert calls.read_text().splitlines() == [
        "update -qq", "install -y -qq chromium chromium-driver"
    ]
    # The stand-in installed nothing, so the script must say so rather than go on.
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "ensure-services: missing Debian's chromium and chromedriver (apt-get install "
        "chromium chromium-driver); install it as root, or run this as root to let it do so"
    )


def test_mariadb_on_another_host__is_only_checked_never_installed(tmp_path):
    result = _run(tmp_path, "mariadb", MYSQL_HOST="127.0.0.2", ENSURE_SERVICES_INSTALL="no")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ensure-services: missing MariaDB on 127.0.0.2:1 (not reachable); "
        "install it as root, or run this as root to let it do so"
    )


def _fake_apt(tmp_path, *missing_tools):
    """Return a PATH whose apt-get records its calls and where `missing_tools` fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "apt-calls"}\n')
    fake.chmod(0o755)
    for tool in missing_tools:
        stub = bin_dir / tool
        stub.write_text("#!/bin/sh\nexit 1\n")
        stub.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path is taken only as root")
def test_root_without_mysqlclient_headers__installs_what_it_builds_with(tmp_path):
    # pkg-config that finds nothing stands for a machine without libmariadb-dev.
    result = _run(tmp_path, "mysqlclient", PATH=_fake_apt(tmp_path, "pkg-config"))
    assert (tmp_path / "apt-calls").read_text().splitlines() == [
        "update -qq", "install -y -qq pkg-config libmariadb-dev gcc python3-dev"
    ]
    assert result.returncode == 0, result.stderr


def test_no_mysqlclient_headers_and_no_install__names_the_packages(tmp_path):
    result = _run(tmp_path, "mysqlclient", PATH=_fake_apt(tmp_path, "pkg-config"),
                  ENSURE_SERVICES_INSTALL="no")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ensure-services: missing what mysqlclient builds with (apt-get install pkg-config "
        "libmariadb-dev gcc python3-dev); install it as root, or run this as root to let it "
        "do so"
    )
    assert not (tmp_path / "apt-calls").exists()


def test_unknown_piece__usage_error(tmp_path):
    result = _run(tmp_path, "mysql")
    assert result.returncode == 2
    assert "unknown piece mysql" in result.stderr
