"""Settings of the example master service: it owns publishers and books.

Everything that differs between a laptop and docker-compose comes from the environment:
DATABASE_URL (sqlite:///path or postgres://user:password@host:port/name; SQLite next to
this file by default), CQRS_BROKER_URL and CQRS_EXCHANGE for RabbitMQ, CELERY_BROKER_URL
for the Celery worker.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cqrs_outbox",
    "catalog",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "master_service.urls"
STATIC_URL = "static/"
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


def database_from_url(url: str) -> dict:
    """Return a Django DATABASES entry for a sqlite:/// or postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path)}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
        }
    raise ValueError(f"DATABASE_URL must be sqlite:///path or postgres://..., got {url!r}")


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'master.sqlite3'}")
    )
}

# The outbox app reads the same `CQRS` dict as django-cqrs, minus 'transport': events go
# into the outbox table and `manage.py cqrs_relay` publishes them to this broker.
CQRS = {
    "url": os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "exchange": os.environ.get("CQRS_EXCHANGE", "cqrs"),
    "master": {
        # Replicas drop an event that reaches them more than a day after it was written.
        "CQRS_MESSAGE_TTL": 86400,
        # Triggers catch writes made outside the ORM (raw SQL, psql, other services), and
        # the relay turns them into events; migrate installs them.
        "capture": "database",
    },
}

# Celery can drain the outbox instead of (or besides) `manage.py cqrs_relay`: beat starts
# the drain task every 5 s; each run drains until nothing is pending, for 5 s at most, and
# sends itself again if it used all of them. Overlapping runs and a running relay share
# the outbox through partition leases, so nothing is sent twice.
# With django-celery-beat, `cqrs_outbox.tasks.schedule_drain()` creates the same schedule
# in the database instead.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", CQRS["url"])
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "master_service")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "drain-cqrs-outbox": {
        "task": "cqrs_outbox.drain_outbox",
        "schedule": 5.0,  # seconds
        "kwargs": {"seconds": 5.0},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"cqrs_outbox": {"level": "INFO"}, "relay": {"level": "INFO"}},
}
