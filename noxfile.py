"""The test matrix: `nox` runs every combination, `nox -s newest` one of them.

Each session is one supported combination of Python, Django and PostgreSQL driver, in a
virtualenv of its own under .nox/. The newest runs the whole suite (faults, packaging and
the SQLite pass included); the others run the unit, integration and acceptance suites.
The `mariadb` session runs the default combination's stack on MariaDB.
Interpreters come from pyenv when it has them, else from `python3.X` on PATH; nothing is
downloaded. Services must be up first: `scripts/ensure-services` (as `make test-matrix`
and `.ci/run` do). Each pytest pass writes a JUnit report to .nox/reports/, from which
`scripts/matrix-summary` prints the counts per combination.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).resolve().parent
REPORTS = ROOT / ".nox" / "reports"
CORE_SUITES = ["tests/unit", "tests/integration", "tests/acceptance"]
SQLITE_PASS = ["-m", "not postgres", "tests/unit", "tests/integration/master",
               "tests/acceptance/replica/test_bulk_writes.py"]
# The MariaDB pass (as `make test-mariadb`): the master, relay, replica and ops suites,
# the tests PostgreSQL alone can run left out. MariaDB must be up (scripts/ensure-services).
MARIADB_PASS = ["-m", "not postgres or mysql", "tests/unit", "tests/integration/master",
                "tests/integration/relay", "tests/integration/replica", "tests/integration/ops",
                "tests/acceptance/replica/test_wire_compat.py",
                "tests/acceptance/replica/test_bulk_writes.py",
                "tests/acceptance/replica/test_writes_outside_orm.py", "tests/faults/relay"]
# django-cqrs is the peer of the compatibility tests, not a dependency. Its release caps
# Django below 6, so on Django 6 it goes in without that pin, with its own requirements.
PEER = "django-cqrs>=2.6"
PEER_REQUIREMENTS = [
    "django-model-utils>=4,<4.5",
    "kombu>=5,<6",
    "python-dateutil>=2.4,<3",
    "ujson>=5.4,<6",
    "watchfiles>=0.18,<2",
]


@dataclass(frozen=True)
class Combination:
    """One supported stack: interpreter, Django series, driver, and what runs on it."""

    python: str
    django: str
    driver: str  # "psycopg" (psycopg 3) or "psycopg2"
    celery_beat: bool = True  # django-celery-beat 2.9 caps Django below 6.1
    full: bool = False

    def requirements(self) -> list[str]:
        """Return what pip installs besides the package's `test` extra."""
        wanted = [f"Django~={self.django}.0", "celery>=5.3"]
        # The suite's helpers talk to PostgreSQL through psycopg2 directly, so psycopg 3
        # sessions carry it too; Django and the relay pick psycopg 3 when it is there.
        wanted += ["psycopg[binary]>=3.1.8", "psycopg2-binary>=2.9"] \
            if self.driver == "psycopg" else ["psycopg2-binary>=2.9"]
        if self.celery_beat:
            wanted.append("django-celery-beat>=2.5")
        if self.full:
            wanted += ["ruff>=0.5", "mypy>=1.10"]
        return wanted


COMBINATIONS = {
    "newest": Combination("3.13", "6.0", "psycopg", full=True),
    "django61": Combination("3.12", "6.1", "psycopg", celery_beat=False),
    "default": Combination("3.11", "5.2", "psycopg"),
    "oldest": Combination("3.10", "4.2", "psycopg2"),
}


def interpreter(version: str) -> str:
    """Return the path of Python `version`: pyenv's newest patch release, else PATH's."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [p for p in root.glob(f"versions/{version}.*/bin/python{version}")
             if p.parent.parent.name.replace(".", "").isdigit()]
    if found:
        newest = max(found, key=lambda p: [int(n) for n in p.parent.parent.name.split(".")])
        return str(newest)
    return shutil.which(f"python{version}") or f"python{version}"


def pytest(session: nox.Session, name: str, db: str, args: list[str]) -> None:
    """Run one pytest pass with its JUnit report; exit status 5 (no tests) fails too."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = REPORTS / f"{name}.xml"
    report.unlink(missing_ok=True)
    # xunit1: the suite's record_property calls are not allowed in the default xunit2.
    session.run("python", "-m", "pytest", "-q", f"--junitxml={report}",
                "-o", "junit_family=xunit1", *args,
                env={"CQRS_TEST_DB": db})


def describe(session: nox.Session, name: str) -> None:
    """Write which versions the session really runs, for the summary."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    code = ("import sys, django, importlib.metadata as m\n"
            "from django.db.backends.postgresql import base\n"
            "driver = 'psycopg ' + m.version('psycopg') if base.is_psycopg3 "
            "else 'psycopg2 ' + m.version('psycopg2-binary')\n"
            "print(f'Python {sys.version.split()[0]}, Django {django.get_version()}, {driver}')")
    line = session.run("python", "-c", code, silent=True) or ""
    (REPORTS / f"{name}.txt").write_text(line.strip() + "\n")


def _install(session: nox.Session, combination: Combination) -> None:
    session.install("-e", ".[test]", *combination.requirements())
    if combination.django.startswith("6"):
        session.install("--no-deps", PEER)
        session.install(*PEER_REQUIREMENTS)
    else:
        session.install(PEER)


def _session(name: str, combination: Combination) -> None:
    @nox.session(name=name, python=interpreter(combination.python))
    def run(session: nox.Session) -> None:
        _install(session, combination)
        describe(session, name)
        if combination.full:
            session.run("ruff", "check", "cqrs_outbox", "relay", "tests", "bench", "examples")
            session.run("mypy", "relay", "cqrs_outbox/core", "cqrs_outbox/store")
            pytest(session, name, "postgres", [*session.posargs])
            pytest(session, f"{name}-sqlite", "sqlite", SQLITE_PASS)
        else:
            pytest(session, name, "postgres", session.posargs or CORE_SUITES)

    run.__doc__ = (f"Python {combination.python}, Django {combination.django}, "
                   f"{combination.driver}: " + ("the whole suite" if combination.full
                                                  else "unit, integration, acceptance"))


for _name, _combination in COMBINATIONS.items():
    _session(_name, _combination)


@nox.session(name="mariadb", python=interpreter(COMBINATIONS["default"].python))
def mariadb(session: nox.Session) -> None:
    """The default combination's stack on MariaDB: master, relay, replica and ops suites."""
    _install(session, COMBINATIONS["default"])
    code = ("import os, sys, django, MySQLdb, importlib.metadata as m\n"
            "c = MySQLdb.connect(host=os.environ.get('MYSQL_HOST', '127.0.0.1'), user='root',\n"
            "                    port=int(os.environ.get('MYSQL_TCP_PORT', '3306')))\n"
            "server = c.get_server_info().split('-')[0]\n"
            "print(f'Python {sys.version.split()[0]}, Django {django.get_version()}, '\n"
            "      f'mysqlclient {m.version(\"mysqlclient\")}, MariaDB {server}')")
    line = session.run("python", "-c", code, silent=True) or ""
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "mariadb.txt").write_text(line.strip() + "\n")
    pytest(session, "mariadb", "mariadb", session.posargs or MARIADB_PASS)
