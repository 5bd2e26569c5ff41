"""Shared fixtures. Each run gets databases, exchanges and queues of its own: the names
are made unique in tests/testproject/settings.py, which pytest-django reads first, and
in tests/support/names.py.

At the end of the run, every queue and exchange still on the broker under this run's id
fails the run: a test that declares one deletes it, whatever its outcome.
"""

from __future__ import annotations

import pytest

from tests.support import names


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it left a queue or exchange of its own on the broker."""
    if session.testscollected == 0 or getattr(session.config, "workerinput", None):
        return
    leaks = names.left_on_broker()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks is None:
        if reporter is not None:
            reporter.write_line("leak check: the broker could not be listed (rabbitmqctl), "
                                "so nothing was checked")
        return
    if leaks:
        if reporter is not None:
            reporter.write_line(f"leak check: the run left {len(leaks)} broker objects "
                                f"behind: {', '.join(sorted(leaks))}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
