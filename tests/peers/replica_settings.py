"""A django-cqrs replica service."""

import os

from tests.peers.common import *  # noqa: F401,F403
from tests.peers.common import cqrs

INSTALLED_APPS = ["dj_cqrs", "tests.peers.replica"]
CQRS = cqrs(
    queue=os.environ.get("CQRS_TEST_QUEUE", "cqrs_peer_replica"),
    replica={"CQRS_MAX_RETRIES": 1, "CQRS_RETRY_DELAY": 1, "delay_queue_max_size": 100},
)
