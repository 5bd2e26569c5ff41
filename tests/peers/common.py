"""Settings shared by the two django-cqrs peer projects."""

import os

SECRET_KEY = "peer-test-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("CQRS_PEER_DB_NAME", "cqrs_peer"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        # Django's default is 0 (a new connection per request, or per message in
        # django-cqrs's consumer); the benchmark also runs it with persistent ones.
        "CONN_MAX_AGE": None if os.environ.get("CQRS_PEER_PERSISTENT_DB") else 0,
    }
}


def cqrs(**extra):
    """Return django-cqrs's CQRS dict for the broker and names in the environment."""
    return {
        "transport": "dj_cqrs.transport.RabbitMQTransport",
        "url": os.environ.get("CQRS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        "exchange": os.environ.get("CQRS_TEST_EXCHANGE", "cqrs_peer"),
        **extra,
    }


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django-cqrs": {"handlers": ["console"], "level": "WARNING"}},
}
