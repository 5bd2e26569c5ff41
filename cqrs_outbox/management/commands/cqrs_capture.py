"""Install the capture triggers, or turn what they recorded into events.

    manage.py cqrs_capture --install     # create the triggers (also done by every migrate)
    manage.py cqrs_capture --sql         # print their DDL, e.g. for a RunSQL migration
    manage.py cqrs_capture --uninstall   # drop them
    manage.py cqrs_capture [--once]      # turn captured changes into events until stopped

`cqrs_relay` and the Celery drain task already do the last one before every drain; run it
alone where the only relay is the standalone `python -m relay`.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import CommandError

from cqrs_outbox.management.commands import _common
from cqrs_outbox.master import outside, triggers


class Command(_common.CQRSCommand):
    help = ("Install the triggers of CQRS['master']['capture'] = 'database', or turn the "
            "changes they caught outside the ORM into outbox events.")

    def add_arguments(self, parser: Any) -> None:
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--install", action="store_true",
                          help="Create (or replace) the capture triggers of every master model "
                               "in capture mode 'database', then exit.")
        what.add_argument("--uninstall", action="store_true",
                          help="Drop the capture triggers of every master model, then exit.")
        what.add_argument("--sql", action="store_true",
                          help="Print the DDL --install would run, then exit.")
        parser.add_argument("--once", action="store_true",
                            help="Take what is recorded now, then exit (default: keep going "
                                 "until stopped).")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="Seconds between looks at the capture table "
                                 "(default: %(default)s).")
        parser.add_argument("--database", default="default",
                            help="Database alias (default: %(default)s).")

    def run(self, options: dict) -> None:
        using = options["database"]
        chosen = outside.models_in_database_mode()
        if options["install"] or options["sql"] or options["uninstall"]:
            self._ddl(options, using, chosen)
            return
        if not chosen:
            raise CommandError("No master model is in capture mode 'database': set "
                               "CQRS['master']['capture'] = 'database' (or CQRS_CAPTURE = "
                               "'database' on a model) and run cqrs_capture --install.")
        if options["interval"] <= 0:
            raise CommandError("--interval must be positive.")
        self._loop(using, options["once"], options["interval"])

    def _ddl(self, options: dict, using: str, chosen: list) -> None:
        if options["uninstall"]:
            from cqrs_outbox.registry import MasterRegistry

            chosen = [m for m in MasterRegistry.models.values() if not m._meta.abstract]
        try:
            sql = triggers.statements(chosen, using, remove=options["uninstall"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["sql"]:
            for statement in sql:
                self.stdout.write(statement.strip() + ";")
            return
        if not chosen:
            raise CommandError("No master model is in capture mode 'database': set "
                               "CQRS['master']['capture'] = 'database' first.")
        triggers.install(chosen, using, remove=options["uninstall"])
        done = "dropped from" if options["uninstall"] else "installed on"
        tables = ", ".join(m._meta.db_table for m in chosen)
        self.stdout.write(f"capture triggers {done} {len(chosen)} table(s): {tables}")

    def _loop(self, using: str, once: bool, interval: float) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        total = 0
        while not stop.is_set():
            taken = outside.process(using)
            total += taken
            if once and not taken:
                break
            if not taken:
                stop.wait(interval)
        self.stdout.write(f"captured changes turned into events: {total}")
