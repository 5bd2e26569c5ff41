"""`python -m relay --driver`: which PostgreSQL module it uses, and the errors without one."""

import datetime
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cqrs_outbox import store
from cqrs_outbox.store import mysql, postgresql

# Run the relay's command line with some driver modules made unimportable, as on a machine
# where they are not installed (None in sys.modules stops an import).
BLOCKED = "import sys\nfor name in {names!r}: sys.modules[name] = None\n" \
          "from relay import cli\nsys.exit(cli.main({argv!r}))"
URL = "postgresql://u:s3cret@127.0.0.1:1/db"


def _relay_without(names, *argv):
    code = BLOCKED.format(names=list(names), argv=["--database-url", URL,
                                                  "--broker-url", "amqp://h/", *argv])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_no_driver_installed__one_line_error_saying_what_to_install():
    result = _relay_without(["psycopg", "psycopg2"])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "relay: error: no PostgreSQL driver is installed: "
        "pip install 'cqrs-outbox[psycopg]' (or '[psycopg2]')"
    )


@pytest.mark.parametrize("missing, package", [("psycopg", "psycopg[binary]"),
                                              ("psycopg2", "psycopg2-binary")])
def test_driver_asked_for_but_missing__one_line_error_naming_the_package(missing, package):
    result = _relay_without([missing], "--driver", missing)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"relay: error: --driver {missing}: the {missing} module is not installed; "
        f"pip install '{package}'"
    )


def test_unknown_driver__usage_error_listing_the_choices():
    result = _relay_without([], "--driver", "pg8000")
    assert result.returncode == 2
    assert "argument --driver: invalid choice: 'pg8000'" in result.stderr
    assert "psycopg" in result.stderr and "s3cret" not in result.stderr


def test_default_driver__is_psycopg_3_when_both_are_there():
    installed = postgresql.installed_drivers()
    if installed != ["psycopg", "psycopg2"]:
        pytest.skip(f"this environment has {installed or 'no driver'}, not both")
    assert postgresql.choose_driver() == "psycopg"
    assert postgresql.choose_driver("psycopg2") == "psycopg2"


def test_driver_version__names_the_module_and_its_release():
    for name in postgresql.installed_drivers():
        text = store.driver_version(name)
        assert text.startswith(name + " ") and text.split()[1][0].isdigit()


@pytest.mark.parametrize("name", ["sqlite", "sqlite3"])
def test_driver_version__of_sqlite_is_the_library_the_module_runs(name):
    """A SQLite relay's start-up line names the SQLite library's release (what decides
    RETURNING and the like), not the sqlite3 module's, which has none of its own."""
    import sqlite3

    assert store.driver_version(name) == f"sqlite3 {sqlite3.sqlite_version}"


def test_driver_version__of_a_module_not_installed_is_its_name():
    assert store.driver_version("no_such_driver") == "no_such_driver"


def test_driver_version__of_psycopg2_built_from_source(monkeypatch):
    """psycopg2 installed from source (distribution `psycopg2`, not `psycopg2-binary`)
    still has its release named: each distribution name is tried in turn."""
    import importlib.metadata

    def version(distribution):
        if distribution == "psycopg2":
            return "2.9.10"
        raise importlib.metadata.PackageNotFoundError(distribution)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert store.driver_version("psycopg2") == "psycopg2 2.9.10"


def test_begin_with_statement__only_psycopg_3_cursors_step_past_the_begin():
    """After "BEGIN; INSERT ... RETURNING", psycopg 3 keeps both results and starts at
    BEGIN's, so its cursor (Django's, which subclasses it, too) steps to the next; psycopg2
    keeps only the last result, and its cursor has no next to step to."""
    psycopg = pytest.importorskip("psycopg")
    psycopg2_extensions = pytest.importorskip("psycopg2.extensions")

    class DjangoLike(psycopg.ClientCursor):
        pass

    stepped = []

    class Psycopg3Cursor(DjangoLike):
        def __init__(self):
            pass

        def nextset(self):
            stepped.append(type(self).__name__)

    class Psycopg2Cursor(psycopg2_extensions.cursor):
        def __init__(self):
            pass

        def nextset(self):
            stepped.append(type(self).__name__)

    postgresql.past_begin(Psycopg3Cursor())
    postgresql.past_begin(Psycopg2Cursor())
    assert stepped == ["Psycopg3Cursor"]


def test_mysql_url__connects_as_the_docs_say():
    """A mysql:// URL gives mysqlclient the documented port and host when it names none,
    the unquoted user and password, utf8mb4, autocommit, a UTC session, 10 s to connect,
    60 s for an answer, and UPDATE counting the rows it matched."""
    client = pytest.importorskip("MySQLdb.constants.CLIENT")
    bare = mysql.connect_options("mysql://app@/shop")
    assert (bare["host"], bare["port"], bare["user"], bare["password"], bare["database"]) == (
        "127.0.0.1", 3306, "app", "", "shop")
    full = mysql.connect_options("mariadb://a%40b:p%3Aw@db.internal:3307/sh%2Fop")
    assert (full["host"], full["port"], full["user"], full["password"], full["database"]) == (
        "db.internal", 3307, "a@b", "p:w", "sh/op")
    assert {k: full[k] for k in ("charset", "autocommit", "connect_timeout", "read_timeout",
                                 "client_flag", "init_command")} == {
        "charset": "utf8mb4", "autocommit": True, "connect_timeout": 10, "read_timeout": 60,
        "client_flag": client.FOUND_ROWS, "init_command": "SET time_zone = '+00:00'"}


@pytest.mark.parametrize(("server", "mariadb"), [
    ("10.11.6-MariaDB-0+deb12u1", True), ("5.5.5-10.6.16-MariaDB", True),
    ("8.0.36", False), (None, False)])
def test_is_mariadb__read_from_the_server_version(server, mariadb):
    """MariaDB names itself in its version; MySQL does not, and a connection that cannot
    say is taken for MySQL, whose way to the new ids works on both."""
    raw = SimpleNamespace() if server is None else SimpleNamespace(
        get_server_info=lambda: server)
    assert mysql.is_mariadb(raw) is mariadb


def test_mysql_timestamp__aware_times_become_naive_utc_and_naive_ones_stay():
    """DATETIME columns hold naive UTC: an aware time is converted, a naive one (already
    UTC, as Django hands them) is left as it is."""
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    aware = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=plus_two)
    naive = datetime.datetime(2026, 12, 7, 12, 0)
    assert mysql.timestamp(aware) == datetime.datetime(2026, 12, 7, 10, 0)
    assert mysql.timestamp(aware).tzinfo is None
    assert mysql.timestamp(naive) is naive


@pytest.mark.parametrize(("plan", "estimate"), [
    # MariaDB: rows the first table reads, times the share its condition keeps.
    ({"query_block": {"select_id": 1, "table": {"table_name": "e", "rows": 40,
                                                "filtered": 25}}}, 10),
    # The same, handed back by Django as a JSON string inside the JSON.
    ('{"query_block": {"table": {"table_name": "e", "rows": 7, "filtered": 100}}}', 7),
    # MySQL 8: rows produced per join, filtered given as text; the first table of a nested plan.
    ({"query_block": {"ordering_operation": {"nested_loop": [
        {"table": {"table_name": "e", "rows_produced_per_join": 12, "filtered": "50.00"}},
        {"table": {"table_name": "f", "rows_produced_per_join": 999}}]}}}, 6),
    # No filter share given: all of the rows.
    ({"query_block": {"table": {"table_name": "e", "rows": 100}}}, 100),
    # A plan naming no table: nothing to count.
    ({"query_block": {"message": "Impossible WHERE"}}, 0),
])
def test_mysql_row_estimate__of_a_filtered_list_from_its_plan(plan, estimate):
    """The admin's estimate of a filtered list on MySQL and MariaDB: what EXPLAIN expects
    the plan's first table to yield, in each server's JSON."""
    text = json.dumps(plan)
    assert mysql.row_estimate(None, "e", True, lambda: text) == estimate
