"""The standalone relay on each installed PostgreSQL driver: wake-up, cuts, start-up line.

Each test runs once per driver this environment has (psycopg 3, psycopg2), so every
combination of the test matrix covers the drivers it installs.
"""

import time

import pytest

from cqrs_outbox import store
from cqrs_outbox.models import OutboxEvent
from cqrs_outbox.store import postgresql
from tests.integration.relay import support
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_until
from tests.testproject.master import models

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.broker,
]

DRIVERS = postgresql.installed_drivers()
# Polling this rarely, an event can only arrive in time through LISTEN/NOTIFY.
SLOW_POLL = ("--poll-interval", "600", "--lease-ttl", "3")
OUTAGE = 2.0  # seconds the proxy stays closed


def test_environment__has_a_postgresql_driver():
    assert DRIVERS, "install psycopg or psycopg2"


def _listening(relay):
    wait_until(lambda: "running" in relay.log(), what=f"{relay.name} running")
    wait_until(support.leases_by_owner, what="the relay holding its leases")


def _save_and_collect(collector, name):
    author = models.Author.objects.create(name=name)
    [event] = OutboxEvent.objects.filter(instance_pk=str(author.pk))
    collector.collect([event.id], timeout=30)


@pytest.mark.parametrize("driver", DRIVERS)
def test_standalone_relay__wakes_on_notify_and_names_its_driver(collector, relays, driver):
    relay = relays(f"wake-{driver}", "--driver", driver, *SLOW_POLL)
    _listening(relay)
    _save_and_collect(collector, f"wake {driver}")
    assert f"({store.driver_version(driver)}), broker amqp://guest:***@" in relay.log()


@pytest.mark.parametrize("driver", DRIVERS)
def test_standalone_relay__database_cut_is_survived_and_listen_resumes(
    collector, relays, driver
):
    from django.db import connection

    settings = connection.settings_dict
    with TcpProxy(settings["HOST"], int(settings["PORT"])) as proxy:
        url = support.database_url(host=proxy.host, port=proxy.port)
        relay = relays(f"cut-{driver}", "--driver", driver, *SLOW_POLL, database=url)
        _listening(relay)
        _save_and_collect(collector, "before the cut")
        proxy.close()
        time.sleep(OUTAGE)
        proxy.open()
        wait_until(lambda: "database available again" in relay.log(), what="reconnected")
        # Still on the slow poll: only a renewed LISTEN can bring this one in time.
        _save_and_collect(collector, "after the cut")
        assert relay.terminate() == 0
    log = relay.log()
    assert log.count("database unavailable") == 1, log
    assert "Traceback" not in log


@pytest.mark.parametrize("driver", DRIVERS)
def test_relay_connection__names_itself_and_keeps_its_timeouts_on_either_driver(driver):
    """The relay's own connection, on either driver, waits at most 10 s to connect,
    probes an idle peer after 10 s, then every 5 s, 3 times (a vanished server shows
    within 25 s instead of hanging the relay), and shows up in pg_stat_activity as
    cqrs-outbox-relay."""
    db = store.connect(support.database_url(), driver=driver)
    try:
        raw = db.raw
        params = (raw.info.get_parameters() if driver == "psycopg"
                  else raw.get_dsn_parameters())
        assert {k: params.get(k) for k in ("connect_timeout", "keepalives", "keepalives_idle",
                                           "keepalives_interval", "keepalives_count")} == {
            "connect_timeout": "10", "keepalives": "1", "keepalives_idle": "10",
            "keepalives_interval": "5", "keepalives_count": "3"}
        assert db.fetchall("SELECT application_name FROM pg_stat_activity "
                           "WHERE pid = pg_backend_pid()") == [("cqrs-outbox-relay",)]
    finally:
        db.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_literal_quoter__psycopg_3_quotes_values_itself_and_psycopg2_binds_them(driver):
    """A big event INSERT on psycopg 3 gets its values written in by psycopg's own
    quoting, which must round-trip every byte; psycopg2 binds them as it always does."""
    db = store.connect(support.database_url(), driver=driver)
    try:
        quote = postgresql.literal_quoter(db)
        if driver == "psycopg2":
            assert quote is None
            return
        text = "o'reilly \\ 100% {x} \u00e9\u4e2d"
        with db.raw.cursor() as cursor:  # as the store runs it: no parameters at all
            cursor.execute(f"SELECT {quote(text).decode()}, {quote(7).decode()}")
            assert cursor.fetchall() == [(text, 7)]
    finally:
        db.close()
