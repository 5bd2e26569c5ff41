"""Settings of the example replica service: read-only copies of the master's catalog.

Everything that differs between a laptop and docker-compose comes from the environment:
DATABASE_URL (sqlite:///path or postgres://user:password@host:port/name; SQLite next to
this file by default), CQRS_BROKER_URL, CQRS_EXCHANGE and CQRS_QUEUE for RabbitMQ.
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
    "library",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "replica_service.urls"
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
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'replica.sqlite3'}")
    )
}

# The same `CQRS` dict as django-cqrs. `queue` names this service's queue: `cqrs_consume`
# declares it and binds it to the exchange for every CQRS_ID of the replica models.
CQRS = {
    "url": os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    "exchange": os.environ.get("CQRS_EXCHANGE", "cqrs"),
    "queue": os.environ.get("CQRS_QUEUE", "replica_service"),
    "replica": {
        # A message whose handler fails is retried 5 times, 1 s apart, through a delay
        # queue, then parked in the dead-letter queue (see `cqrs_dead_letters`).
        "CQRS_MAX_RETRIES": 5,
        "CQRS_RETRY_DELAY": 1,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"cqrs_outbox": {"level": "INFO"}},
}
