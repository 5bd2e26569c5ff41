"""Settings of the test project: master and replica apps on SQLite, PostgreSQL or MariaDB.

CQRS_TEST_DB=sqlite|postgres|mariadb picks the database (default postgres); the addresses
of the services come from PGHOST/PGPORT/PGUSER, MYSQL_HOST/MYSQL_TCP_PORT/MYSQL_USER and
CQRS_BROKER_URL, with this machine's defaults. On MariaDB (or MySQL) the tables are
utf8mb4 and the transactions run at REPEATABLE READ, the server's own default, which is
the stricter case for the master's commit order (Django would pick READ COMMITTED).
"""

import json
import os

from tests.support import names

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cqrs_outbox",
    "tests.testproject.master",
    "tests.testproject.replica",
    "tests.testproject.chaos",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.testproject.urls"
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Names unique to this run, written back to the environment so that the processes a test
# starts meet the same databases, exchange and queue, and parallel runs never meet.
RUN_ID = names.run_id()
DB_KIND = os.environ.get("CQRS_TEST_DB", "postgres")
DB_NAME = os.environ.setdefault("CQRS_TEST_DB_NAME", f"cqrs_outbox_{RUN_ID}")


def _database(suffix: str) -> dict:
    if DB_KIND == "sqlite":
        # A process a test starts is handed the test database's file itself.
        if DB_NAME.endswith(".sqlite3"):
            return {"ENGINE": "django.db.backends.sqlite3",
                    "NAME": DB_NAME.replace(".sqlite3", f"{suffix}.sqlite3")}
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"/tmp/{DB_NAME}{suffix}.sqlite3",
            "TEST": {"NAME": f"/tmp/test_{DB_NAME}{suffix}.sqlite3"},
        }
    if DB_KIND == "mariadb":
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": f"{DB_NAME}{suffix}",
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_TCP_PORT", "3306"),
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PWD", ""),
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "repeatable read"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": f"{DB_NAME}{suffix}",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }


DATABASES = {"default": _database(""), "other": _database("_other")}

CQRS = {
    "url": os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "exchange": os.environ.setdefault("CQRS_TEST_EXCHANGE", f"cqrs_test_{RUN_ID}"),
    "queue": os.environ.setdefault("CQRS_TEST_QUEUE", f"cqrs_test_replica_{RUN_ID}"),
    "master": {"CQRS_MESSAGE_TTL": 3600},
    "replica": {"CQRS_MAX_RETRIES": 3, "CQRS_RETRY_DELAY": 1},
}
# The signing key of a master command a test runs (cqrs_sync), and the signature policy
# of a replica worker a test starts (JSON of trusted keys).
if os.environ.get("CQRS_TEST_SIGNATURES"):
    CQRS["replica"]["signatures"] = os.environ["CQRS_TEST_SIGNATURES"]
    CQRS["replica"]["trusted_keys"] = json.loads(os.environ.get("CQRS_TEST_TRUSTED_KEYS", "{}"))
# The capture mode of a relay process a test starts ('database': the safety net).
if os.environ.get("CQRS_TEST_CAPTURE"):
    CQRS["master"]["capture"] = os.environ["CQRS_TEST_CAPTURE"]
if os.environ.get("CQRS_TEST_SIGNING_KEY"):
    CQRS["master"]["signing_key"] = json.loads(os.environ["CQRS_TEST_SIGNING_KEY"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # A test reading a worker's INFO lines (what it found at start) asks for them.
    "loggers": {"cqrs_outbox": {"handlers": ["console"],
                                "level": os.environ.get("CQRS_TEST_LOG_LEVEL", "WARNING")}},
}
