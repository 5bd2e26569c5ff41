"""A django-cqrs master service."""

from tests.peers.common import *  # noqa: F401,F403
from tests.peers.common import cqrs

INSTALLED_APPS = ["dj_cqrs", "tests.peers.master"]
CQRS = cqrs(master={"CQRS_MESSAGE_TTL": 3600})
