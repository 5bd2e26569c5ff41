"""Run the relay: `python -m relay --help`."""

import sys

from relay import cli

sys.exit(cli.main())
