"""`python -m relay`: one-line errors, exit status, no password in any output."""

import subprocess
import sys

SECRET = "s3cret-Pw"


def _relay(*args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def _one_line_error(result, code, *words):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("relay: error: ")
    for word in words:
        assert word in lines[0]
    assert SECRET not in result.stderr + result.stdout


def test_unknown_option__one_line_usage_error():
    result = _relay("--database-url", "sqlite:///x", "--frobnicate")
    _one_line_error(result, 2, "unrecognized arguments: --frobnicate")


def test_bad_broker_url__one_line_error_without_the_password(outbox):
    result = _relay("--database-url", outbox.url, "--broker-url", f"http://u:{SECRET}@h/")
    _one_line_error(result, 2, "--broker-url", "amqp")


def test_bad_database_url__one_line_error_without_the_password():
    result = _relay("--database-url", f"oracle://u:{SECRET}@h/db", "--broker-url", "amqp://h")
    _one_line_error(result, 2, "postgresql://, mysql://")


def test_unreachable_mysql_database_at_start__one_line_error_without_the_password():
    url = f"mysql://u:{SECRET}@127.0.0.1:1/db"
    result = _relay("--database-url", url, "--broker-url", "amqp://127.0.0.1:1/")
    _one_line_error(result, 1, "cannot connect to mysql://u:***@127.0.0.1:1/db")


def test_mysql_url_without_database_name__one_line_usage_error():
    result = _relay("--database-url", f"mysql://u:{SECRET}@127.0.0.1", "--broker-url", "amqp://h")
    _one_line_error(result, 2, "names no database")


def test_unreachable_database_at_start__one_line_error_without_the_password():
    url = f"postgresql://u:{SECRET}@127.0.0.1:1/db"
    result = _relay("--database-url", url, "--broker-url", "amqp://127.0.0.1:1/")
    _one_line_error(result, 1, "cannot connect to postgresql://u:***@127.0.0.1:1/db")


def test_missing_sqlite_file__one_line_error(tmp_path):
    url = f"sqlite:///{tmp_path}/nothing.sqlite3"
    result = _relay("--database-url", url, "--broker-url", "amqp://127.0.0.1:1/")
    _one_line_error(result, 1, "cannot connect to")


def test_missing_tables__one_line_error_saying_to_migrate(tmp_path):
    path = tmp_path / "empty.sqlite3"
    path.touch()
    result = _relay("--database-url", f"sqlite:///{path}", "--broker-url", "amqp://h/")
    _one_line_error(result, 2, "migrate")


def test_status__prints_counts_and_masks_the_url(outbox):
    outbox.add("author", 1)
    outbox.add("author", 2)
    result = _relay("--database-url", outbox.url, "--status")
    assert result.returncode == 0, result.stderr
    assert "pending: 2" in result.stdout
    assert "failed: 0" in result.stdout
    assert "partitions held: 0 of 64" in result.stdout
