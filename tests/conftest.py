"""Shared fixtures. Each run gets databases, exchanges and queues of its own."""

import os
import uuid

# Before Django reads settings: names unique to this run, so parallel runs never meet.
RUN_ID = os.environ.setdefault("CQRS_TEST_RUN_ID", uuid.uuid4().hex[:8])
os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_outbox_{RUN_ID}")
os.environ.setdefault("CQRS_TEST_EXCHANGE", f"cqrs_test_{RUN_ID}")
os.environ.setdefault("CQRS_TEST_QUEUE", f"cqrs_test_replica_{RUN_ID}")
