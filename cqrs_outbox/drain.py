"""Drain the outbox from Django: the relay on a Django connection, configured by `CQRS`.

The `cqrs_relay` command and the Celery tasks both build their relay here.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import connections

from cqrs_outbox import conf, store
from cqrs_outbox.store import dbapi
from relay import engine, metrics, pika_publisher

logger = logging.getLogger(__name__)


def build_relay(database: str = "default", observer: metrics.Observer | None = None,
                **overrides: Any) -> engine.Relay:
    """Return a relay on Django's connection `database`, configured by `CQRS` settings.

    `overrides` replace fields of `relay.engine.Config` (batch_size, poll_interval, ...);
    `observer` hears what it does (see `relay.metrics`).
    """
    settings = conf.get()
    publisher = pika_publisher.PikaPublisher(settings.addresses, settings.exchange)
    return engine.Relay(
        functools.partial(_database, database), publisher,
        conf.relay_config(settings, **overrides), observer=observer,
        before_turn=functools.partial(capture_step, database, observer),
    )


def capture_step(database: str = "default", observer: metrics.Observer | None = None) -> int:
    """Turn the changes the capture triggers recorded into events (mode 'database');
    return how many were taken. A failure is logged, and the relay goes on draining."""
    from cqrs_outbox.master import outside

    try:
        return outside.process(database, observer=observer)
    except Exception:
        logger.exception("turning captured changes of database %r into events failed; the "
                         "records stay and are taken again at the next turn", database)
        return 0


def _database(alias: str) -> dbapi.Database:
    return store.wrap(connections[alias])
