"""The replica worker: consume with a prefetch window, apply in batches, ack after commit.

One batch is up to `batch_size` deliveries. Undecodable, unknown or expired messages
go to the dead-letter queue with the reason in their headers; a failing event goes to
the delay queue with its `retries` counter raised, or to the dead-letter queue once
its model's `should_retry_cqrs` says no. Only then is the batch acknowledged, so a
crash at any point leaves every message either applied or still queued.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections, router

from cqrs_outbox import conf, tracing
from cqrs_outbox.core import backoff, outages, wire
from cqrs_outbox.core.errors import (
    BadMessage,
    BrokerUnavailable,
    DatabaseUnavailable,
    MessageRejected,
)
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.core.urls import safe_urls
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import (
    apply,
    batchlog,
    broker,
    queries,
    revlog,
    sentences,
    signatures,
    telemetry,
    topology,
    transport,
)
from cqrs_outbox.replica.transport import Delivery, Transport

logger = logging.getLogger(__name__)
# The operator's lines: progress every PROGRESS_INTERVAL while applying, and the stop.
# `cqrs_consume` shows this logger at INFO when the project's LOGGING leaves it alone
# (`console_logging`), where the per-message INFO lines above stay quiet.
status = logging.getLogger("cqrs_outbox.replica.status")

IDLE_WAIT = 0.2  # seconds to wait for deliveries when nothing is buffered
BACKOFF_BASE = 0.5  # seconds before the first reconnect
BACKOFF_MAX = 30.0  # seconds, the longest wait between reconnects
TOMBSTONE_PURGE_INTERVAL = 3600.0  # seconds between purges of old tombstones
DB_IDLE_CLOSE = 60.0  # seconds without a batch after which database connections are closed
REASON_CHARS = 1000  # characters of a dead-letter reason
PK_CHARS = 200  # characters of a primary key quoted in a log line
PROGRESS_INTERVAL = 60.0  # seconds between progress lines while events are applied


@dataclass
class Tally:
    """What a worker did with its messages, for the progress and stop lines."""

    applied: int = 0
    skipped: int = 0  # acknowledged without a change: old revisions, filtered, ignored
    dead: int = 0
    retried: int = 0
    lag: float | None = None  # seconds from the master's save to the last one applied

    def add(self, other: Tally) -> None:
        """Count `other` into this tally; its lag is the newer."""
        self.applied += other.applied
        self.skipped += other.skipped
        self.dead += other.dead
        self.retried += other.retried
        self.lag = other.lag if other.lag is not None else self.lag

    def text(self) -> str:
        """Return the counts as the lines show them."""
        lag = "-" if self.lag is None else f"{self.lag:.1f}s"
        return (f"{self.applied} applied, {self.skipped} skipped, {self.dead} dead-lettered, "
                f"{self.retried} retried, lag {lag}")


@dataclass  # one per message: not frozen, which doubles the cost of making one
class _Verdict:
    delivery: Delivery
    action: str  # 'ack', 'retry' or 'dead'
    reason: str = ""
    body: bytes = b""
    delay: float = 0.0


class Consumer:
    """Consume the replica queue until stopped; reconnect after broker or database loss."""

    def __init__(self, cqrs_ids: list[str] | None = None, batch_size: int | None = None,
                 prefetch_count: int | None = None,
                 transport: Transport | None = None) -> None:
        self.settings = conf.get()
        self.transport = transport or broker.PikaTransport(self.settings)
        replica = self.settings.replica
        self.names = topology.names(self.settings)
        self.observer = telemetry.observer(self.names.queue, set(ReplicaRegistry.models))
        self.cqrs_ids = sorted(cqrs_ids or ReplicaRegistry.models)
        self.batch_size = batch_size or replica.batch_size
        self.prefetch_count = max(prefetch_count or replica.prefetch_count, self.batch_size)
        self.stopping = threading.Event()
        self._buffer: list[Delivery] = []
        self._next_purge = 0.0
        self._last_batch = time.monotonic()
        self._batches_done = 0
        self.applied = 0
        self._outage = outages.Outage(logger, "broker or database")
        self._report = batchlog.BatchReport(logger)
        self._gate = signatures.Gate(self.settings, self.names.queue)
        self._queue_described = False
        self._newest: wire.Envelope | None = None  # the batch's last applied event
        self.tally = Tally()  # since the last progress line
        self.total = Tally()  # since the start
        self._progress_from = time.monotonic()  # when the current tally began

    def stop(self, *args: Any) -> None:
        """Finish the batch in hand, acknowledge it and return from `run()`."""
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        """Stop on SIGTERM and SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)

    def run(self) -> None:
        """Consume until `stop()`; a lost broker or database is waited for, then reconnected."""
        failures = 0
        while not self.stopping.is_set():
            done_before = self._batches_done
            try:
                self._session()
            except (BrokerUnavailable, DatabaseUnavailable, MessageRejected) as exc:
                # Only a session that got a batch through ends an outage: back off afresh.
                failures = 1 if self._batches_done > done_before else failures + 1
                self.observer.down(exc)
                delay = backoff.jittered(failures - 1, BACKOFF_BASE, BACKOFF_MAX)
                self._outage.failed(f"{one_line(exc)}; reconnecting in {delay:.1f}s")
                connections.close_all()
                self.stopping.wait(delay)
        connections.close_all()  # this thread's connections: nobody else can close them
        self.total.add(self.tally)
        status.info("Worker %s stopped on queue %s, its last batch acknowledged; since its "
                    "start: %s", os.getpid(), self.names.queue, self.total.text())

    def _session(self) -> None:
        self._buffer = []
        try:
            self.transport.open(self.names, self.cqrs_ids, self.prefetch_count)
            self._consume()
        finally:
            self.transport.close()

    def _consume(self) -> None:
        self.observer.connected(_aliases(self.cqrs_ids))
        logger.info("Consuming %s from %s on %s (batch %s, prefetch %s)",
                    ", ".join(self.cqrs_ids), self.names.queue,
                    safe_urls(self.settings.addresses), self.batch_size, self.prefetch_count)
        self._describe_queue()
        while not self.stopping.is_set():
            before = len(self._buffer)
            self._buffer.extend(self.transport.receive(0 if before else IDLE_WAIT))
            ready = len(self._buffer) >= self.batch_size or len(self._buffer) == before
            if self._buffer and ready:
                batch = self._buffer[: self.batch_size]
                del self._buffer[: self.batch_size]
                self._handle(batch)
            elif not self._buffer:
                self._idle()
            self.observer.turned()

    def _describe_queue(self) -> None:
        """Say once what kind of queue this is, and warn of a delivery limit that a few
        crashes could exhaust."""
        info = self.transport.queue_info()
        if info is None or self._queue_described:
            return
        self._queue_described = True
        if info.own_arguments:
            logger.warning("Queue %s exists with arguments of its own (%s); consuming it as it "
                           "is. A django-cqrs consumer would fail to declare it.",
                           info.name, one_line(info.own_arguments))
        limit, source = info.delivery_limit()
        logger.info("Queue %s on RabbitMQ %s: %s queue, delivery limit %s", info.name,
                    info.version or "(version unknown)", info.kind, source)
        if limit is not None and limit < 2 * self.prefetch_count:
            logger.warning(
                "Queue %s takes a message off after %s deliveries, fewer than twice the "
                "prefetch (%s): each crash or reconnect of a worker counts one delivery of up "
                "to %s messages. Give the queue a dead-letter target by policy (docs: "
                "operations.md, Delivery limits and dead letters) so they land in %s, or "
                "lower the prefetch.",
                info.name, limit, self.prefetch_count, self.prefetch_count,
                self.names.dead_letter_queue)

    def _handle(self, batch: list[Delivery]) -> None:
        started = time.monotonic()
        self._report = batchlog.BatchReport(logger)
        applied_before = self.applied
        verdicts: dict[int, _Verdict] = {}
        work: list[tuple[Delivery, wire.Envelope, Any]] = []
        for delivery in batch:
            verdict, item = self._triage(delivery)
            if verdict is not None:
                verdicts[delivery.tag] = verdict
            if item is not None:
                work.append(item)
        if work:
            self._last_batch = time.monotonic()
            traced = [getattr(d.properties, "headers", None) for d, _, _ in work]
            with tracing.batch_span(self.names.queue, traced):
                outcomes = _apply(work)
            self.observer.batch(time.monotonic() - self._last_batch)
            self._newest = None
            for (delivery, envelope, model), outcome in zip(work, outcomes, strict=True):
                verdicts[delivery.tag] = self._settle(delivery, envelope, model, outcome)
            self._note_lag()
        for delivery in batch:
            self._forward(verdicts[delivery.tag])
        self.transport.ack(batch[-1].tag)
        self._batches_done += 1
        self._outage.recovered()
        self._report.finish(len(batch), self.applied - applied_before,
                            (time.monotonic() - started) * 1000)
        self._progress()

    def _progress(self) -> None:
        """Write the progress line once PROGRESS_INTERVAL has passed since the last."""
        now = time.monotonic()
        if now - self._progress_from < PROGRESS_INTERVAL:
            return
        status.info("Worker %s on queue %s, last %.0fs: %s", os.getpid(), self.names.queue,
                    now - self._progress_from, self.tally.text())
        self.total.add(self.tally)
        self.tally = Tally()
        self._progress_from = now

    def _settle(self, delivery: Delivery, envelope: wire.Envelope, model: Any,
                outcome: apply.EventResult) -> _Verdict:
        try:
            self._note(envelope, outcome)
            return self._judge(delivery, envelope, model, outcome)
        except Exception as exc:  # e.g. a body that cannot be encoded again for its retry
            reason = f"bad message: {outcome.reason or outcome.status}, and then " \
                     f"{type(exc).__name__}: {exc}"
            return self._dead(delivery, reason, envelope)

    def _note(self, envelope: wire.Envelope, outcome: apply.EventResult) -> None:
        if not outcome.note:
            return
        revision = envelope.instance_data.get(wire.REVISION_KEY)
        lines = revlog.lines(outcome.note, envelope.cqrs_id, envelope.instance_pk, revision,
                             outcome.existing)
        self._report.event(outcome.note, lines)

    def _triage(self, delivery: Delivery) -> tuple[_Verdict | None, Any]:
        try:
            return self._read(delivery)
        except Exception as exc:  # nothing one message holds may stop the worker
            reason = f"bad message: cannot read it: {type(exc).__name__}: {exc}"
            return self._dead(delivery, reason, envelope=None), None

    def _read(self, delivery: Delivery) -> tuple[_Verdict | None, Any]:
        replica = self.settings.replica
        try:
            envelope = wire.decode(delivery.body, replica.max_body_size, replica.max_depth)
        except BadMessage as exc:
            fits = len(delivery.body) <= replica.max_body_size
            said = sentences.for_body(delivery.body) if fits else ""
            return self._dead(delivery, f"bad message: {exc}", None, said=(said,)), None
        _info(sentences.received, envelope)
        refused = None
        if self._gate.verifier is not None:  # (a label costs a string per message)
            refused = self._gate.refusal(delivery.label, envelope, delivery.properties,
                                         delivery.body)
        if refused:
            return self._dead(delivery, f"signature refused: {refused}", envelope), None
        envelope = signatures.from_headers(delivery.properties, envelope, delivery.body,
                                       self.names.queue)
        model = ReplicaRegistry.get_model_by_cqrs_id(envelope.cqrs_id)
        if model is None:
            reason = f"bad message: no replica model has cqrs_id {envelope.cqrs_id!r}"
            cqrs_id = envelope.cqrs_id
            said = (sentences.no_model(cqrs_id), sentences.model_not_found(cqrs_id))
            return self._dead(delivery, reason, envelope, said=said), None
        if wire.is_expired(envelope):
            reason = f"expired at {envelope.expires}"
            return self._dead(delivery, reason, envelope, failed=False), None
        if self._indirect_sync(delivery, envelope, model):
            logger.debug("Ignored broadcast SYNC %s:%s (CQRS_ONLY_DIRECT_SYNCS)",
                         envelope.cqrs_id, envelope.instance_pk)
            _info(sentences.applied, envelope)
            self.tally.skipped += 1
            return _Verdict(delivery, "ack"), None
        return None, (delivery, envelope, model)

    def _indirect_sync(self, delivery: Delivery, envelope: wire.Envelope, model: Any) -> bool:
        if envelope.signal_type != wire.SIGNAL_SYNC or not model.CQRS_ONLY_DIRECT_SYNCS:
            return False
        direct = topology.direct_routing_key(self.names, envelope.cqrs_id)
        return delivery.original_routing_key != direct

    def _judge(self, delivery: Delivery, envelope: wire.Envelope, model: Any,
               outcome: apply.EventResult) -> _Verdict:
        if outcome.status in (apply.APPLIED, apply.IGNORED):
            self.applied += outcome.status == apply.APPLIED
            self._count(envelope, outcome)
            self.observer.acknowledged(envelope, outcome.reason)
            _info(sentences.applied, envelope)
            return _Verdict(delivery, "ack")
        said = _handler_said(envelope, model, outcome)
        if outcome.status == apply.BAD:
            return self._dead(delivery, f"bad message: {outcome.reason}", envelope, said=said)
        retries = envelope.retries
        try:
            again = model.should_retry_cqrs(retries, outcome.error)
            wait = model.get_cqrs_retry_delay(retries) if again else 0
            delay = float(wait)
        except Exception as exc:  # the model's own retry policy: its failure ends the retries
            reason = f"failed ({outcome.reason}) and the retry policy raised {exc!r}"
            return self._dead(delivery, reason, envelope, said=said)
        if again:
            self._retry_lines(delivery, envelope, outcome, said, wait, delay)
            keep = signatures.is_signed(delivery.properties)  # sent on byte for byte
            body = delivery.body if keep else wire.with_retries(envelope, retries + 1)
            self.observer.retried(envelope)
            self.tally.retried += 1
            return _Verdict(delivery, "retry", outcome.reason, body, delay)
        reason = f"failed after {retries} retries: {outcome.reason}"
        return self._dead(delivery, reason, envelope, said=said)

    def _count(self, envelope: wire.Envelope, outcome: apply.EventResult) -> None:
        if outcome.status != apply.APPLIED or outcome.reason:
            self.tally.skipped += 1
            return
        self.tally.applied += 1
        self._newest = envelope

    def _note_lag(self) -> None:
        """Take the lag from the batch's last applied event: the tally keeps the last."""
        updated = None if self._newest is None else telemetry.updated_at(self._newest)
        if updated is not None:
            self.tally.lag = max(0.0, (wire.utcnow() - updated).total_seconds())

    def _retry_lines(self, delivery: Delivery, envelope: wire.Envelope,
                     outcome: apply.EventResult, said: tuple, wait: Any, delay: float) -> None:
        about = (envelope.instance_pk, envelope.cqrs_id, envelope.correlation_id)
        eta = wire.utcnow() + datetime.timedelta(seconds=delay)
        what = f"{envelope.cqrs_id}:{envelope.instance_pk}"
        ours = _event_line("Retrying", delivery, what,
                           f"failed ({one_line(outcome.reason, REASON_CHARS)}); "
                           f"retry {envelope.retries + 1} in {delay}s")
        lines = [(logging.ERROR, text) for text in said]
        lines.append((logging.WARNING, sentences.failed(*about, envelope.retries)))
        lines.append((logging.WARNING, sentences.line(sentences.delayed(*about, wait, eta), ours)))
        self._report.event("retry", lines)

    def _dead(self, delivery: Delivery, reason: str, envelope: wire.Envelope | None,
              said: tuple = (), failed: bool = True) -> _Verdict:
        """Dead-letter a delivery, logging django-cqrs's lines for the case before ours.

        `said` are django-cqrs's sentences for the cause; a message it would have tried
        and failed (`failed`) also gets its "CQRS is failed" line.
        """
        reason = one_line(reason, REASON_CHARS)
        what = f"{envelope.cqrs_id}:{envelope.instance_pk}" if envelope else "body"
        self.observer.dead_lettered(envelope, reason)
        self.tally.dead += 1
        ours = _event_line("Dead-lettered", delivery, what, reason)
        lines = [(logging.ERROR, text) for text in said if text]
        if envelope is not None:
            about = (envelope.instance_pk, envelope.cqrs_id, envelope.correlation_id)
            if failed:
                lines.append((logging.WARNING, sentences.failed(*about, envelope.retries)))
            ours = sentences.line(sentences.dead_letter(*about), ours)
        lines.append((logging.ERROR, ours))
        self._report.event("dead", lines)
        return _Verdict(delivery, "dead", reason, delivery.body)

    def _forward(self, verdict: _Verdict) -> None:
        delivery = verdict.delivery
        headers = {
            transport.ROUTING_KEY_HEADER: delivery.original_routing_key,
            transport.QUEUE_HEADER: self.names.queue,
        }
        if verdict.action == "retry":
            headers[transport.REASON_HEADER] = verdict.reason
            if signatures.is_signed(delivery.properties):
                headers[signatures.RETRIES_HEADER] = _retries(delivery) + 1
            if verdict.delay <= 0:
                props = broker.properties(delivery.properties, headers)
                self.transport.send(self.names.queue, verdict.body, props)
                return
            props = broker.properties(delivery.properties, headers, int(verdict.delay * 1000))
            self.transport.send(self.names.delay_queue, verdict.body, props)
        elif verdict.action == "dead":
            headers[transport.REASON_HEADER] = verdict.reason
            headers[transport.FAILED_AT_HEADER] = broker.now_header()
            ttl = self.settings.replica.dead_message_ttl
            props = broker.properties(delivery.properties, headers, ttl and ttl * 1000)
            self.transport.send(self.names.dead_letter_queue, verdict.body, props)

    def _idle(self) -> None:
        # A connection idle for long may have been dropped by the server or the network;
        # starting the next batch on a fresh one beats failing it and being redelivered.
        if time.monotonic() - self._last_batch > DB_IDLE_CLOSE:
            connections.close_all()
            self._last_batch = time.monotonic()
        self._purge_tombstones()

    def _purge_tombstones(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + TOMBSTONE_PURGE_INTERVAL
        retention = self.settings.replica.tombstone_retention
        for alias in _aliases(self.cqrs_ids):
            try:
                purged = queries.purge_tombstones(alias, retention)
            except Exception as exc:  # housekeeping must never stop the worker
                logger.warning("Purging tombstones in %r failed: %s", alias, exc)
                continue
            if purged:
                logger.info("Purged %s tombstones older than %ss from %r", purged, retention,
                            alias)


def _apply(work: list[tuple[Delivery, wire.Envelope, Any]]) -> list[apply.EventResult]:
    """Apply the batch; if applying fails in a way it does not handle, one event at a time."""
    pairs = [(envelope, model) for _, envelope, model in work]
    try:
        return apply.apply(pairs)
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # a bug must cost one event, not the worker
        logger.exception("Applying a batch failed (%s); applying its events one by one",
                         one_line(exc, REASON_CHARS))
    outcomes = []
    for pair in pairs:
        try:
            outcomes.extend(apply.apply([pair]))
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            outcomes.append(apply.failure(exc))
    return outcomes


def console_logging() -> bool:
    """Show the status lines (progress, stop) at INFO on stderr, unless the project's
    LOGGING says something about them; return whether it did.

    Django's default LOGGING configures the `django` loggers only, and Python then shows
    records of WARNING and above alone: a worker applying events would say nothing. A
    handler, or a level, on `cqrs_outbox.replica.status`, `cqrs_outbox.replica`,
    `cqrs_outbox` or the root logger is the project's choice and is left alone.
    """
    node: Any = status
    while node is not None:
        if node.handlers or (node is not logging.root and node.level != logging.NOTSET):
            return False
        node = node.parent if node.propagate else None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    status.addHandler(handler)
    status.setLevel(logging.INFO)
    return True


def _event_line(verb: str, delivery: Delivery, what: str, reason: str) -> str:
    """Return our line for a retried or dead-lettered delivery: the same fields for both
    (the message, cqrs_id:pk, why, a preview of the body)."""
    return (f"{verb} {one_line(delivery.label)} {one_line(what, PK_CHARS)}: {reason}; "
            f"body: {wire.preview(delivery.body)}")


def _retries(delivery: Delivery) -> int:
    value = signatures.headers_of(delivery.properties).get(signatures.RETRIES_HEADER)
    return value if isinstance(value, int) else 0


def _aliases(cqrs_ids: list[str]) -> set[str]:
    found = set()
    for cqrs_id in cqrs_ids:
        model = ReplicaRegistry.get_model_by_cqrs_id(cqrs_id)
        if model is not None and not model.CQRS_NO_DB_OPERATIONS:
            found.add(router.db_for_write(model))
    return found



def _info(sentence: Any, envelope: wire.Envelope) -> None:
    # django-cqrs writes these INFO lines for every message; built only when shown.
    if logger.isEnabledFor(logging.INFO):
        logger.info("%s", sentence(envelope.instance_pk, envelope.cqrs_id,
                                   envelope.correlation_id))


def _handler_said(envelope: wire.Envelope, model: Any, outcome: apply.EventResult) -> tuple:
    """Return django-cqrs's line for an error the model's own code raised, if it raised."""
    if not outcome.raised:
        return ()
    if isinstance(outcome.error, DatabaseError):
        meta = getattr(model, "_meta", None)  # a raw replica may be no Django model
        pk = envelope.instance_data.get(getattr(getattr(meta, "pk", None), "name", "id"))
        revision = envelope.instance_data.get(wire.REVISION_KEY)
        said = sentences.write_error(envelope.signal_type, pk, revision, envelope.cqrs_id)
        return (sentences.line(said, outcome.reason),)
    return (sentences.line(sentences.SERVICE_EXCEPTION, outcome.reason),)
