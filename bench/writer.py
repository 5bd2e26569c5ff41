"""One writer process of bench/master_write.py's concurrent case: plain Django or our master.

Started by master_write.py with the bench's database in the environment (CQRS_TEST_DB and
CQRS_TEST_DB_NAME, the database its setup made). Prints "ready" once Django is set up,
then reads commands from stdin, one per line ("<column> <scenario> <rows>", the column
"plain" or "outbox"), runs the scenario on the test project's Plain or Author model and
prints the rate in rows per second; the column "floor" runs `scenarios.floor`.
django-cqrs's writers are bench/djcqrs_master.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.testproject.settings"

import django  # noqa: E402

django.setup()

from bench import scenarios  # noqa: E402
from tests.testproject.master import models  # noqa: E402


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        column, scenario, rows = line.split()
        if column == "floor":
            rate = scenarios.floor(scenario, int(rows))
        elif column == "plain":
            rate = scenarios.run(scenario, models.Plain, models.Plain.objects, int(rows))
        else:
            rate = scenarios.run(scenario, models.Author, models.Author.cqrs, int(rows))
        print(f"{rate:.3f}", flush=True)


if __name__ == "__main__":
    main()
