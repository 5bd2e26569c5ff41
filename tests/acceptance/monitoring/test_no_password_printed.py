"""No password, whatever shape it comes in, reaches any output.

Shapes: a URL's user part, libpq's `password=` and `sslpassword=` query parameters, a
libpq keyword string, and broker URLs alone, repeated, as a host list and as a list in
one value. Outputs: stdout and stderr of `python -m relay` (start-up line, `--status`,
connection errors, outage lines), its metric labels, the lines and log records of
`cqrs_relay` and `cqrs_consume`, and the system check messages. PostgreSQL trusts local
logins here, so a database URL with any password connects; the broker URLs point at a
port nothing listens on, so their passwords go through the outage lines.
"""

import io
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from tests.acceptance.monitoring import scrape
from tests.integration.relay import support
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
    pytest.mark.slow,
]

SECRET = "Xy7-s3cr3t-Qz"


def _database_shapes():
    s = connection.settings_dict
    where = f"{s['HOST']}:{s['PORT']}"
    return {
        "userinfo": f"postgresql://{s['USER']}:{SECRET}@{where}/{s['NAME']}",
        "password_parameter": f"postgresql://{s['USER']}@{where}/{s['NAME']}?password={SECRET}",
        "sslpassword_parameter": (f"postgresql://{s['USER']}@{where}/{s['NAME']}"
                                  f"?sslmode=disable&sslpassword={SECRET}"),
        "keyword_string": (f"host={s['HOST']} port={s['PORT']} user={s['USER']} "
                           f"password={SECRET} dbname={s['NAME']}"),
    }


def _broker_shapes(port):
    one = f"amqp://guest:{SECRET}@127.0.0.1:{port}/%2F"
    return {
        "one_url": [one],
        "repeated": [one, f"amqp://other:{SECRET}@127.0.0.1:{port + 1}/%2F"],
        "host_list": [f"amqp://guest:{SECRET}@127.0.0.1:{port},127.0.0.1:{port + 1}/v"
                      "?heartbeat=5"],
        "list_in_one_value": [f"{one}, amqps://u:{SECRET}@localhost:{port + 1}/v"],
    }


def _clean(*texts):
    for text in texts:
        assert SECRET not in text, text
        assert "s3cr3t" not in text, text


def _relay(*args, timeout=60):
    done = subprocess.run([sys.executable, "-m", "relay", *args], cwd=support.ROOT,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("database", ["userinfo", "password_parameter", "sslpassword_parameter"])
@pytest.mark.parametrize("broker", ["one_url", "repeated", "host_list", "list_in_one_value"])
def test_python_m_relay__start_line_outage_lines_and_metric_labels_show_no_password(
        database, broker, tmp_path):
    dead = scrape.free_port()
    port = scrape.free_port()
    args = ["--database-url", _database_shapes()[database], "--metrics-port", str(port),
            "--exchange", support.unique("nopw")]
    for url in _broker_shapes(dead)[broker]:
        args += ["--broker-url", url]
    log = tmp_path / "relay.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "relay", *args], cwd=support.ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        labels = wait_until(lambda: _labels(port), what="the relay's metrics")
        wait_until(lambda: "broker unavailable" in log.read_text(), what="the outage line")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    text = log.read_text()
    assert "relay " in text and "broker amqp://" in text and "***" in text
    _clean(text, repr(labels))
    assert {dict(label)["database"] for label in labels} == {connection.settings_dict["NAME"]}


def _labels(port):
    found = scrape.get(port, "/metrics")
    if found[0] != 200:
        return None
    return scrape.labelled(port, "cqrs_outbox_database_up") or None


@pytest.mark.parametrize("database", ["userinfo", "password_parameter", "sslpassword_parameter",
                                      "keyword_string"])
def test_python_m_relay__status_and_connection_errors_show_no_password(database):
    url = _database_shapes()[database]
    code, status = _relay("--database-url", url, "--status")
    s = connection.settings_dict
    unreachable = url.replace(f":{s['PORT']}", f":{scrape.free_port()}").replace(
        f"port={s['PORT']}", f"port={scrape.free_port()}")
    failed, error = _relay("--database-url", unreachable, "--broker-url", "amqp://h:1/")
    if database == "keyword_string":  # not a URL: refused, and said so without the password
        assert code == failed == 2 and "must start with postgresql://" in status
    else:
        assert code == 0 and status.startswith("database: postgresql://")
        assert failed == 1 and "cannot connect to postgresql://" in error
    _clean(status, error)


@pytest.mark.parametrize("broker", ["one_url", "repeated", "host_list", "list_in_one_value"])
def test_cqrs_relay__start_line_and_log_records_show_no_password(broker, caplog):
    caplog.set_level(logging.DEBUG)
    urls = _broker_shapes(scrape.free_port())[broker]
    out, err = io.StringIO(), io.StringIO()
    with override_settings(CQRS={**settings.CQRS, "url": urls if len(urls) > 1 else urls[0],
                                 "exchange": support.unique("nopw")}):
        call_command("cqrs_relay", "--seconds", "1.5", stdout=out, stderr=err)
    assert out.getvalue().startswith("relay ") and "***" in out.getvalue()
    assert any("broker unavailable" in r.getMessage() for r in caplog.records)
    _clean(out.getvalue(), err.getvalue(), *(r.getMessage() for r in caplog.records))


@pytest.mark.parametrize("broker", ["one_url", "host_list", "list_in_one_value"])
def test_cqrs_consume__start_line_and_reconnect_lines_show_no_password(broker, tmp_path):
    [url] = _broker_shapes(scrape.free_port())[broker]
    env = {**os.environ, "CQRS_BROKER_URL": url,
           "CQRS_TEST_DB_NAME": connection.settings_dict["NAME"],
           "CQRS_TEST_QUEUE": support.unique("nopw")}
    log = tmp_path / "consume.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "django", "cqrs_consume", "-v", "3",
             "--settings=tests.testproject.settings"], cwd=support.ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "reconnecting" in log.read_text(), what="the reconnect line")
        time.sleep(1.0)  # a second failed attempt, on the next node of a list
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    text = log.read_text()
    assert "consuming queue " in text and "***" in text
    _clean(text)


@pytest.mark.parametrize("cqrs", [
    {"url": [f"amqp://u:{SECRET}@h/v", f"amqp://u:{SECRET}@h:notaport/v"]},
    {"url": f"amqp://u:{SECRET}@h1,h2/v?heartbeat=5&password={SECRET}"},
    {"url": [f"amqp://u:{SECRET}@h/v", {"password": SECRET}]},
    {"url": f"postgresql://u@h/db?password={SECRET}"},
    {"password": [SECRET]},
])
def test_check_messages__show_no_password(cqrs):
    with override_settings(CQRS={**cqrs, "queue": "q"}):
        with pytest.raises(SystemCheckError) as caught:
            call_command("check")
    assert "cqrs_outbox.E00" in str(caught.value)
    _clean(str(caught.value))
