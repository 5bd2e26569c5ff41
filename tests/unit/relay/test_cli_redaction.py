"""`python -m relay` prints no password, whatever shape the URL has (no services needed)."""

import subprocess
import sys

import pytest

SECRET = "Sup3rSecret"
DATABASE_URLS = [
    f"postgresql://postgres:pa/{SECRET}@127.0.0.1:1/db",
    f"postgresql://postgres:pa#{SECRET}@127.0.0.1:1/db",
    f"postgresql://postgres:pa?{SECRET}@127.0.0.1:1/db?sslmode=disable",
    f"postgresql://postgres:{SECRET}@[::1]:1/db",
]
BAD_BROKER_URLS = [
    f"amqp://guest:pa#{SECRET}@broker:notaport/",
    f"amqp://guest:pa/{SECRET}@[::1]:x/v",
    f"http://guest:pa?{SECRET}@broker/v?x=1",
]


def _relay(*args):
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True,
                          text=True, timeout=60)


def _assert_one_clean_line(result, code):
    assert result.returncode == code, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", DATABASE_URLS)
def test_database_url__unreachable_error_prints_no_password(url):
    _assert_one_clean_line(_relay("--database-url", url, "--broker-url", "amqp://h:1/"), 1)


@pytest.mark.parametrize("url", DATABASE_URLS)
def test_status__with_an_unreachable_database_prints_no_password(url):
    _assert_one_clean_line(_relay("--database-url", url, "--status"), 1)


@pytest.mark.parametrize("url", BAD_BROKER_URLS)
def test_broker_url__configuration_error_prints_no_password(url, tmp_path):
    _assert_one_clean_line(_relay("--database-url", "sqlite:///x", "--broker-url", url), 2)
