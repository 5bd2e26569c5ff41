"""The long chaos profile: `python -m tests.faults.chaos --minutes 20`.

Writes, kills and cuts for the minutes asked, then waits for the replica, checks it and
prints the same figures as the fast profile. Exits 0 when every check passed, 1 if not.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from tests.faults.chaos import harness


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the run, which removes everything it created

    signal.signal(signal.SIGTERM, stop)


def main() -> int:
    """Run the long profile and print its report; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos",
                                     description="Run the chaos suite for as long as asked.")
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the processes' logs go (default: a new temporary directory)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testproject.settings")
    _stop_on_sigterm()
    profile = harness.long_profile(args.minutes)
    profile = harness.Profile(**{**profile.__dict__, "writers": args.writers})
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        report = harness.run(profile, log_dir, seed=args.seed,
                             say=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print(f"interrupted; the run's processes, databases and queues are gone; logs in "
              f"{log_dir}", file=sys.stderr)
        return 130
    print("\n".join(report.lines()), flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
