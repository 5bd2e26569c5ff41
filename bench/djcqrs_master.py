"""The django-cqrs column of bench/master_write.py: its master, publishing to RabbitMQ.

Started by master_write.py with the database and broker in the environment. Reads
commands from stdin, one per line ("<scenario> <rows> <port>"), runs the scenario on
django-cqrs's own MasterMixin model and prints the rate in rows per second. Its model
has the columns of the other two and lives in the same database.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402


def _database() -> dict:
    """Return the bench database, on the server master_write.py runs on."""
    if os.environ.get("BENCH_DB_KIND") == "mariadb":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ["BENCH_DB_NAME"],
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_TCP_PORT", "3306"),
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PWD", ""),
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "repeatable read"},
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["BENCH_DB_NAME"],
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }


settings.configure(
    SECRET_KEY="bench",
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    INSTALLED_APPS=["django.contrib.contenttypes", "dj_cqrs", "bench.djcqrs_app"],
    DATABASES={"default": _database()},
    CQRS={
        "transport": "dj_cqrs.transport.RabbitMQTransport",
        "url": os.environ["BENCH_BROKER_URL"],
        "exchange": os.environ["BENCH_EXCHANGE"],
        "master": {"CQRS_MESSAGE_TTL": 3600},
    },
)
django.setup()

from django.db import connection  # noqa: E402

from bench import scenarios  # noqa: E402
from bench.djcqrs_app.models import BenchAuthor  # noqa: E402


def main() -> None:
    if BenchAuthor._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(BenchAuthor)
    print("ready", flush=True)
    for line in sys.stdin:
        scenario, rows, port = line.split()
        connection.close()
        connection.settings_dict["PORT"] = port
        rate = scenarios.run(scenario, BenchAuthor, BenchAuthor.cqrs, int(rows))
        print(f"{rate:.3f}", flush=True)


if __name__ == "__main__":
    main()
