"""Instructions per row of a master write, counted by valgrind: a figure load cannot move.

The rates of bench/master_write.py move by a third from one run to the next on a shared
machine, which hides a change of a few per cent in our Python per save. This bench
counts the instructions the client process runs instead (valgrind's callgrind tool),
which come out the same whatever else the machine is doing, for each column of
master_write.py that runs in this process: plain Django, the floor (plain writes plus
prebuilt events queued on the outbox, `scenarios.floor`) and our master.

Each figure is the difference between two runs of one column, one writing `--rows` rows
more than the other, divided by `--rows`: start-up, migrations and the warm-up cancel
out. The database server's own work is not counted (on SQLite it runs in the process,
so it is). `outbox - floor` is what our Python costs per row, the figure to bring down.

    python bench/instructions.py [--scenarios tx10,autocommit] [--database sqlite]
                                 [--rows 1000]

Needs valgrind (Debian's package of that name); each run takes about half a minute.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COLUMNS = ("plain", "floor", "outbox")
WARM_UP = 100  # rows written before either measured run, and the smaller run's extra
COLLECTED = re.compile(rb"Collected : (\d+)")


def child(column: str, scenario: str, rows: int) -> None:
    """Write `rows` rows of `scenario` in `column`, after a warm-up, in a fresh database."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"
    kind = os.environ.setdefault("CQRS_TEST_DB", "sqlite")
    if kind == "sqlite":
        os.environ["CQRS_TEST_DB_NAME"] = ":memory:"
    else:
        os.environ["CQRS_TEST_DB_NAME"] = f"cqrs_instr_{uuid.uuid4().hex[:10]}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from bench import scenarios
    from tests.testproject.master import models

    state = None
    if kind == "sqlite":
        call_command("migrate", verbosity=0)
    else:
        state = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        for n in (WARM_UP, rows):
            if column == "floor":
                scenarios.floor(scenario, n)
            elif column == "plain":
                scenarios.run(scenario, models.Plain, models.Plain.objects, n)
            else:
                scenarios.run(scenario, models.Author, models.Author.cqrs, n)
    finally:
        connection.close()
        if state is not None:
            teardown_databases(state, verbosity=0)


def count(column: str, scenario: str, rows: int, database: str) -> int:
    """Return the instructions of one child run, as callgrind counts them."""
    env = dict(os.environ, PYTHONHASHSEED="0", CQRS_TEST_DB=database)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--child", column, scenario, str(rows)],
        capture_output=True, env=env, cwd=ROOT, check=False,
    )
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"the {column} {scenario} run failed: " + " | ".join(tail))
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="tx10,autocommit",
                        help="comma-separated, of autocommit, tx10, bulk")
    parser.add_argument("--database", choices=("sqlite", "postgres", "mariadb"),
                        default="sqlite", help="where the rows are written (default sqlite)")
    parser.add_argument("--rows", type=int, default=1000,
                        help="rows of the larger run over the smaller one")
    parser.add_argument("--child", nargs=3, metavar=("COLUMN", "SCENARIO", "ROWS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        column, scenario, rows = args.child
        child(column, scenario, int(rows))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench/instructions.py needs valgrind: apt-get install valgrind")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    from bench import scenarios

    for scenario in args.scenarios.split(","):
        if scenario not in scenarios.FLOOR_SCENARIOS:
            parser.error(f"--scenarios: {scenario!r} has no floor; choose from "
                         + ", ".join(scenarios.FLOOR_SCENARIOS))
        per_row = {}
        for column in COLUMNS:
            small = count(column, scenario, WARM_UP, args.database)
            large = count(column, scenario, WARM_UP + args.rows, args.database)
            per_row[column] = (large - small) / args.rows
        plain, floor, ours = (per_row[c] for c in COLUMNS)
        print(f"{scenario:10} {args.database:8} instructions a row: plain {plain:,.0f}  "
              f"floor {floor:,.0f}  outbox {ours:,.0f}   outbox - floor {ours - floor:+,.0f} "
              f"(our Python per row), floor - plain {floor - plain:+,.0f}", flush=True)


if __name__ == "__main__":
    main()
