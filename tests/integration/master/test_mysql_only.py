"""A MySQL or MariaDB service installs the `mysql` extra and no PostgreSQL driver: its
saves must never reach for one."""

import json
import subprocess
import sys

import pytest
from django.db import connection

from cqrs_outbox.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mysql]

SAVE_WITHOUT_PSYCOPG = """
import sys
for name in ("psycopg", "psycopg2"):
    sys.modules[name] = None  # as on a machine where neither is installed
import django
django.setup()
from django.db import connection, transaction
connection.settings_dict["NAME"] = {name!r}
from tests.testproject.master import models
author = models.Author.objects.create(name="autocommit")
with transaction.atomic():
    models.Author.objects.create(name="in a block")
print(author.pk)
"""


def test_saves_on_mysql__need_no_postgresql_driver():
    if connection.vendor != "mysql":
        pytest.skip("a MySQL or MariaDB service")
    code = SAVE_WITHOUT_PSYCOPG.format(name=connection.settings_dict["NAME"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = [json.loads(e.payload)["instance_data"]["name"]
             for e in OutboxEvent.objects.order_by("id")]
    assert names == ["autocommit", "in a block"]
