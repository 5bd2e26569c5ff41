"""Each case django-cqrs logs gets a record of ours that opens with django-cqrs's sentence.

Teams alert on django-cqrs's lines, so for the same case our record starts with the very
sentence django-cqrs writes (its template read from its installed source, filled with the
case's values), at django-cqrs's level or above; our detail follows on the same line. A
filter written for django-cqrs's text therefore matches ours.

The replica manager and master cases call the models against the real database; the
consumer cases run a real consumer (in a thread of the test) against RabbitMQ and
PostgreSQL; the settings cases build settings from the same values django-cqrs warns on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models.signals import pre_delete

from cqrs_outbox import conf
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import consumer, topology
from tests.acceptance.replica import support
from tests.integration.replica import events as ev
from tests.support import djcqrs_text
from tests.support.waiting import wait_until
from tests.testproject.master import models as master
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db(transaction=True)

BASE = {"url": "amqp://guest:guest@127.0.0.1:5672/%2F", "queue": "q"}
CONSUMER = [pytest.mark.postgres, pytest.mark.broker]


@dataclass
class Case:
    """One case: django-cqrs's template and values, and how to make ours log it."""

    template: str  # as it stands in django-cqrs's source
    args: tuple
    level: int  # django-cqrs's level for it
    run: Callable[[Any], None]
    cut: str = ""  # compare up to and including this text (what follows varies)
    marks: list = field(default_factory=list)

    def sentence(self, args: tuple | None = None) -> str:
        text = djcqrs_text.sentence(self.template, *(self.args if args is None else args))
        return text[: text.index(self.cut) + len(self.cut)] if self.cut else text


@dataclass
class Context:
    caplog: Any
    monkeypatch: Any
    settings: Any
    tmp_path: Any
    case: Case
    args: tuple = ()  # the case's values, when only the run knows them (a new row's pk)


def _data(pk, revision, **fields):
    return ev.save("author", pk, revision, **fields)["instance_data"]


# Replica manager, called directly (as cqrs_bulk_load and users' code do).


def _refused_delete(ctx):
    def refuse(sender, instance, **kwargs):
        raise IntegrityError("delete refused by the test's receiver")

    models.AuthorRef.cqrs_save(_data(1, 0, name="a"))
    pre_delete.connect(refuse, sender=models.AuthorRef)
    try:
        models.AuthorRef.cqrs_delete(ev.delete("author", 1, 1)["instance_data"])
    finally:
        pre_delete.disconnect(refuse, sender=models.AuthorRef)


def _row_then(first, then):
    def run(ctx):
        models.AuthorRef.cqrs_save(first)
        ctx.caplog.clear()
        models.AuthorRef.cqrs_save(then, sync=then.get("sync", False))

    return run


def _sync_older(ctx):
    models.AuthorRef.cqrs_save(_data(1, 1, name="new"))
    models.AuthorRef.cqrs_save(_data(1, 0, name="old"), sync=True)


def _too_long_update(ctx):
    models.FilteredRef.cqrs_save(ev.save("filtered", 1, 0, name="short")["instance_data"])
    models.FilteredRef.cqrs_save(ev.save("filtered", 1, 1, name="y" * 150)["instance_data"])


def _bad_date_update(ctx):
    models.AllFieldsRef.cqrs_save(ev.save("all_fields", 1, 0)["instance_data"])
    models.AllFieldsRef.cqrs_save(ev.save("all_fields", 1, 1, date_field="soon")["instance_data"])


MANAGER = {
    "required-fields-missing": Case(
        "Not all required CQRS fields are provided in data ({0}).", ("author",), logging.ERROR,
        lambda ctx: models.AuthorRef.cqrs_save(_data(1, 0))),
    "pk-missing-on-save": Case(
        "CQRS PK is not provided in data ({0}).", ("author",), logging.ERROR,
        lambda ctx: models.AuthorRef.cqrs_save({"name": "a", "cqrs_revision": 0,
                                                "cqrs_updated": ev.UPDATED})),
    "pk-missing-on-delete": Case(
        "CQRS PK is not provided in data ({0}).", ("author",), logging.ERROR,
        lambda ctx: models.AuthorRef.cqrs_delete({"cqrs_revision": 1,
                                                  "cqrs_updated": ev.UPDATED})),
    "sync-fields-missing-on-save": Case(
        "CQRS sync fields are not provided in data ({0}).", ("author",), logging.ERROR,
        lambda ctx: models.AuthorRef.cqrs_save({"id": 1, "name": "a", "cqrs_revision": 0})),
    "sync-fields-missing-on-delete": Case(
        "CQRS sync fields are not provided in data ({0}).", ("author",), logging.ERROR,
        lambda ctx: models.AuthorRef.cqrs_delete({"id": 1, "cqrs_revision": 0})),
    "bad-mapping": Case(
        "Bad master-replica mapping for {0} ({1}).", ("status", "tracked"), logging.ERROR,
        lambda ctx: models.TrackedRef.cqrs_save(ev.save("tracked", 2, 0, name="n")
                                                ["instance_data"])),
    "create-refused-by-the-database": Case(
        "{0}\nCQRS create error: pk = {1} ({2}).", ("<error>", 1, "filtered"), logging.ERROR,
        lambda ctx: models.FilteredRef.cqrs_save(ev.save("filtered", 1, 0, name="x" * 150)
                                                 ["instance_data"])),
    "create-of-a-value-the-field-refuses": Case(
        "{0}\nCQRS create error: pk = {1} ({2}).", ("<error>", 1, "all_fields"), logging.ERROR,
        lambda ctx: models.AllFieldsRef.cqrs_save(ev.save("all_fields", 1, 0, date_field="soon")
                                                  ["instance_data"])),
    "update-refused-by-the-database": Case(
        "{0}\nCQRS update error: pk = {1}, cqrs_revision = {2} ({3}).",
        ("<error>", 1, 1, "filtered"), logging.ERROR, _too_long_update),
    "update-of-a-value-the-field-refuses": Case(
        "{0}\nCQRS update error: pk = {1}, cqrs_revision = {2} ({3}).",
        ("<error>", 1, 1, "all_fields"), logging.ERROR, _bad_date_update),
    "delete-refused-by-the-database": Case(
        "{0}\nCQRS delete error: pk = {1} ({2}).", ("<error>", 1, "author"), logging.ERROR,
        _refused_delete),
    "sync-older-than-the-row": Case(
        "CQRS revision downgrade on sync: pk = {0}, cqrs_revision = new {1} / existing {2} "
        "({3}).", (1, 0, 1, "author"), logging.WARNING, _sync_older),
    "save-older-than-the-row": Case(
        "Wrong CQRS sync order: pk = {0}, cqrs_revision = new {1} / existing {2} ({3}).",
        (1, 1, 2, "author"), logging.ERROR,
        _row_then(_data(1, 2, name="b"), _data(1, 1, name="a"))),
    "duplicate": Case(
        "Received duplicate CQRS data: pk = {0}, cqrs_revision = {1} ({2}).", (1, 1, "author"),
        logging.ERROR, _row_then(_data(1, 1, name="a"), _data(1, 1, name="a"))),
    "creation-race": Case(
        "CQRS potential creation race condition: pk = {0} ({1}).", (1, "author"),
        logging.WARNING, _row_then(_data(1, 0, name="a"), _data(1, 0, name="a"))),
    "lost-revisions": Case(
        "Lost or filtered out {0} CQRS packages: pk = {1}, cqrs_revision = {2} ({3})",
        (4, 1, 5, "author"), logging.WARNING,
        _row_then(_data(1, 0, name="a"), _data(1, 5, name="b"))),
}


# Master side.


def _created_and_deleted(ctx):
    with transaction.atomic():
        author = master.Author.objects.create(name="brief")
        ctx.args = ("Author", author.pk)
        author.delete()


def _filtered_out(ctx):
    writer = master.Writer.objects.create(name="hidden one")
    ctx.args = ("Writer", writer.pk)


MASTER = {
    # django-cqrs says pk=None here: Django has cleared the pk of the deleted instance by
    # the time django-cqrs builds the event at commit. Ours names the row.
    "save-of-a-row-deleted-in-the-same-transaction": Case(
        "Can't produce message from master model '{}': The instance doesn't exist (pk={})",
        (), logging.ERROR, _created_and_deleted),
    "save-of-a-row-the-serializer-filters-out": Case(
        "Can't produce message from master model '{}': The instance doesn't exist (pk={})",
        (), logging.ERROR, _filtered_out),
}


# Settings django-cqrs tolerates, with a warning.


def _settings(section, key, value):
    def run(ctx):
        ctx.settings.CQRS = {**BASE, section: {key: value}}
        conf.get()

    return run


SETTINGS = {
    "message-ttl-invalid": Case(
        "Settings CQRS_MESSAGE_TTL=%s is invalid, using default %s.", (0, 86400),
        logging.WARNING, _settings("master", "CQRS_MESSAGE_TTL", 0)),
    "max-retries-invalid": Case(
        "Replica setting CQRS_MAX_RETRIES=%s is invalid, using default %s.", (-1, 30),
        logging.WARNING, _settings("replica", "CQRS_MAX_RETRIES", -1)),
    "retry-delay-invalid": Case(
        "Replica setting CQRS_RETRY_DELAY=%s is invalid, using default %s.", (-1, 2),
        logging.WARNING, _settings("replica", "CQRS_RETRY_DELAY", -1)),
}


# The consumer, on RabbitMQ.


def _consume(ctx, *messages, until):
    """Run a consumer on a queue of the test's own until a record starts with `until`."""
    queue = support.unique("sentences")
    ctx.settings.CQRS = {**ctx.settings.CQRS, "exchange": support.unique("sentences_ex"),
                         "queue": queue}
    ctx.monkeypatch.setenv("CQRS_TEST_CONTROL_DIR", str(ctx.tmp_path / "control"))
    names = topology.names(conf.get())
    client = support.Broker(names.exchange)
    worker = consumer.Consumer(batch_size=10)
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        topology.declare(client.channel, names, sorted(ReplicaRegistry.models))
        for body, routing_key in messages:
            client.publish(body, routing_key or topology.direct_routing_key(names, "author"))
        thread.start()
        wait_until(lambda: any(r.getMessage().startswith(until) for r in ctx.caplog.records),
                   what=until)
    finally:
        worker.stop()
        thread.join(30)
        client.delete(names.queue, names.dead_letter_queue, names.delay_queue)
        client.close()


def _consumer_case(template, args, level, *messages, cut=""):
    def run(ctx):
        _consume(ctx, *messages, until=ctx.case.sentence())

    return Case(template, args, level, run, cut=cut, marks=CONSUMER)


def _expired():
    body = ev.save("author", 7, 0, name="late")
    return {**body, "expires": "2000-01-01T00:00:00+00:00"}


def _without(key):
    body = ev.save("author", 8, 0, name="x")
    del body[key]
    return body


def _raising_hook(ctx):
    def cqrs_save(master_data, **kwargs):
        raise IntegrityError("the hook's write was refused")

    ctx.monkeypatch.setattr(models.AuthorRef, "cqrs_save", cqrs_save)
    _consume(ctx, (ev.save("author", 3, 0, name="x"), "author"), until=ctx.case.sentence())


PARSE_FAILURE = b"{bad_payload:"
NO_PK = _without("instance_pk")
NO_PK_BYTES = json.dumps(NO_PK, separators=(",", ":")).encode()

CONSUMER_CASES = {
    "received": _consumer_case(
        "CQRS is received: pk = %s (%s), correlation_id = %s.", (1, "author", None),
        logging.INFO, (ev.save("author", 1, 0, name="a"), "author")),
    "applied": _consumer_case(
        "CQRS is applied: pk = %s (%s), correlation_id = %s.", (1, "author", None),
        logging.INFO, (ev.save("author", 1, 0, name="a"), "author")),
    "failed": _consumer_case(
        "CQRS is failed: pk = %s (%s), correlation_id = %s, retries = %s.",
        (2, "flaky", None, 0), logging.WARNING, (ev.save("flaky", 2, 0, name="fail:1"), "flaky")),
    "delayed": _consumer_case(
        "CQRS is delayed: pk = %s (%s), correlation_id = %s, delay = %s sec, eta = %s.",
        (2, "flaky", None, 1, "<eta>"), logging.WARNING,
        (ev.save("flaky", 2, 0, name="fail:1"), "flaky"), cut="eta = "),
    "hook-raised": _consumer_case(
        "CQRS service exception", (), logging.ERROR,
        (ev.save("flaky", 2, 0, name="fail:1"), "flaky")),
    "hook-raised-a-database-error": Case(
        "{0}\nCQRS {1} error: pk = {2}, cqrs_revision = {3} ({4}).",
        ("<error>", "SAVE", 3, 0, "author"), logging.ERROR, _raising_hook, marks=CONSUMER),
    "pk-that-is-no-value-of-its-field": _consumer_case(
        "CQRS service exception", (), logging.ERROR,
        (ev.save("author", "abc", 0, name="x"), "author")),
    "dead-lettered": _consumer_case(
        "CQRS is added to dead letter queue: pk = %s (%s), correlation_id = %s.",
        (7, "author", None), logging.WARNING, (_expired(), "author")),
    "required-fields-missing-in-a-message": _consumer_case(
        "Not all required CQRS fields are provided in data ({0}).", ("author",), logging.ERROR,
        (ev.save("author", 9, 0), "author")),
    "not-json": _consumer_case(
        "CQRS couldn't be parsed: {0}.", (PARSE_FAILURE,), logging.ERROR,
        (PARSE_FAILURE, "author")),
    "key-missing": _consumer_case(
        "CQRS couldn't proceed, %s isn't found in body: %s.", ("instance_pk", NO_PK_BYTES),
        logging.ERROR, (NO_PK_BYTES, "author")),
    "bad-signal-type": _consumer_case(
        'Bad signal type "{0}" for CQRS_ID "{1}".', ("invalid", "author"), logging.ERROR,
        ({**ev.save("author", 5, 0, name="x"), "signal_type": "invalid"}, "author")),
    "unknown-cqrs-id": _consumer_case(
        "No model with such CQRS_ID: {0}.", ("nope",), logging.ERROR,
        ({**ev.save("author", 6, 0, name="x"), "cqrs_id": "nope"}, None)),
    "unknown-cqrs-id-failing": _consumer_case(
        "Model for cqrs_id {0} is not found.", ("nope",), logging.ERROR,
        ({**ev.save("author", 6, 0, name="x"), "cqrs_id": "nope"}, None)),
}

CASES = {**MANAGER, **MASTER, **SETTINGS, **CONSUMER_CASES}


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=case.marks) for name, case in CASES.items()])
def test_log_line__opens_with_django_cqrs_sentence_for_the_same_case(
        name, caplog, monkeypatch, settings, tmp_path):
    """django-cqrs logs a fixed sentence for each of these cases (its manager's refusals
    and revision notes, its consumer's per-message lines, its master's missing row, its
    tolerated settings). Ours opens a record of the same case with that sentence, at that
    level or above."""
    case = CASES[name]
    ctx = Context(caplog, monkeypatch, settings, tmp_path, case, case.args)
    caplog.set_level(logging.DEBUG, logger="cqrs_outbox")
    case.run(ctx)
    expected = case.sentence(ctx.args)
    ours = [r for r in caplog.records if r.name.startswith("cqrs_outbox")]
    found = [r for r in ours if r.getMessage().startswith(expected)]
    assert found, f"no record opens with {expected!r}: {[r.getMessage() for r in ours]}"
    assert max(r.levelno for r in found) >= case.level
