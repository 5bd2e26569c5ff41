"""Apply a batch of events by revision, in one transaction per database.

The whole batch is tried in one transaction first: rows are locked by key, their
revisions and tombstones are read in one query each per model, each event is decided in
delivery order, and the survivors are written in bulk. Models with handlers of their
own have each call wrapped in a savepoint. If a bulk write fails, the transaction is
rolled back and the batch is applied again one event per savepoint, so a failing event
is isolated and the others still apply.

A value the database refuses (a DataError: out of range, too long, malformed) is bad
input and comes back BAD, to be dead-lettered at once; other failures come back FAILED
and are retried by the model's policy.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)

from cqrs_outbox import conf
from cqrs_outbox.core import wire
from cqrs_outbox.core.errors import BadMessage, DatabaseUnavailable, HandlerFailed
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.replica import handlers, managers, mapping, queries, revlog, rules, writes

logger = logging.getLogger(__name__)

APPLIED = "applied"
IGNORED = "ignored"
BAD = "bad"
FAILED = "failed"
REASON_CHARS = 1000  # characters of an error's text kept in a reason


# Made once per event: not frozen, whose __init__ costs twice as much (each field set
# through object.__setattr__). Nothing changes one after it is made.
@dataclass
class EventResult:
    """What became of one event."""

    status: str
    reason: str = ""
    error: BaseException | None = None
    note: str = ""  # a revlog note: lost, stale, duplicate, ...
    existing: int | None = None  # the row's revision when the event was decided
    raised: bool = False  # the model's own code raised (rather than returned nothing)


@dataclass
class _Item:
    index: int
    envelope: wire.Envelope
    model: Any
    change: mapping.Change


@dataclass
class _Run:
    """The decisions of one attempt at a group of items."""

    outcomes: dict = field(default_factory=dict)
    plans: dict = field(default_factory=dict)  # model -> writes.Plan
    # (action, item) of models whose handlers run, in delivery order: "call" the
    # handler, or "mark" / "forget" the row's tombstone, between the calls.
    hooked: list = field(default_factory=list)
    bulk: dict = field(default_factory=dict)  # model -> whether it is applied in bulk

    def in_bulk(self, model: Any) -> bool:
        """Tell (once per batch) whether the model's events are written in bulk."""
        if model not in self.bulk:
            self.bulk[model] = handlers.uses_bulk_path(model)
        return self.bulk[model]


def apply(batch: list[tuple[wire.Envelope, Any]]) -> list[EventResult]:
    """Apply (envelope, model) pairs in order; return one outcome each.

    Raises DatabaseUnavailable when the database is gone, so that nothing is acknowledged.
    """
    outcomes: list[EventResult | None] = [None] * len(batch)
    groups: dict[str, list[_Item]] = defaultdict(list)
    ways: dict[Any, mapping.Writes] = {}  # how each model's rows are written, per batch
    for index, (envelope, model) in enumerate(batch):
        if model.CQRS_NO_DB_OPERATIONS:
            outcomes[index] = _call_handler(model, envelope)
            continue
        try:
            if model not in ways:
                ways[model] = mapping.Writes.of(model)
            change = mapping.prepare(model, envelope.signal_type, envelope.instance_data,
                                     ways[model])
        except Exception as exc:  # any failure to read one event is that event's fault
            if isinstance(exc, BadMessage):
                # django-cqrs's manager logs this at ERROR; so does ours when called.
                logger.error("%s", managers.refusal(model, envelope.signal_type,
                                                    envelope.instance_data, exc))
            outcomes[index] = failure(exc)
            continue
        groups[router.db_for_write(model)].append(_Item(index, envelope, model, change))
    for alias, items in groups.items():
        for index, outcome in _apply_alias(alias, items).items():
            outcomes[index] = outcome
    return [o if o is not None else EventResult(FAILED, "not applied") for o in outcomes]


def _call_handler(model: Any, envelope: wire.Envelope) -> EventResult:
    try:
        handlers.call(model, envelope)
    except Exception as exc:  # the user's handler: any error is this event's failure
        return _handler_failure(exc)
    return EventResult(APPLIED)


def _apply_alias(alias: str, items: list[_Item]) -> dict[int, EventResult]:
    try:
        with transaction.atomic(using=alias):
            return _attempt(alias, items)
    except Exception as exc:
        _raise_if_lost(alias, exc)
        logger.info("Batch of %s events failed (%s); applying them one by one", len(items),
                    one_line(exc, REASON_CHARS))
    return _one_by_one(alias, items)


def _one_by_one(alias: str, items: list[_Item]) -> dict[int, EventResult]:
    outcomes: dict[int, EventResult] = {}
    with transaction.atomic(using=alias):
        for item in items:
            try:
                with transaction.atomic(using=alias):
                    outcomes.update(_attempt(alias, [item]))
            except Exception as exc:
                _raise_if_lost(alias, exc)
                outcomes[item.index] = failure(exc)
    return outcomes


def _attempt(alias: str, items: list[_Item]) -> dict[int, EventResult]:
    queries.set_statement_timeout(alias, conf.get().replica.query_timeout)
    queries.lock(alias, [(i.model.CQRS_ID, i.change.key) for i in items])
    states = _states(alias, items)
    run = _Run()
    for item in items:
        _decide(item, states, run)
    for model, plan in run.plans.items():
        writes.execute(model, alias, plan)
    for action, item in run.hooked:
        if action == "call":
            run.outcomes[item.index] = _call_in_savepoint(alias, item)
        else:
            plan = writes.Plan()
            (plan.mark if action == "mark" else plan.forget)(item.change)
            writes.execute(item.model, alias, plan)
    return run.outcomes


def _call_in_savepoint(alias: str, item: _Item) -> EventResult:
    # The model's own code may fail; its savepoint keeps the rest of the batch, so the
    # batch need not be run again (and the handler called twice) to isolate it.
    try:
        with transaction.atomic(using=alias), managers.repairing(is_repair(item.envelope)):
            handlers.call(item.model, item.envelope)
    except Exception as exc:
        _raise_if_lost(alias, exc)
        return _handler_failure(exc)
    return EventResult(APPLIED)


def _states(alias: str, items: list[_Item]) -> dict:
    by_model: dict[Any, list[mapping.Change]] = defaultdict(list)
    for item in items:
        by_model[item.model].append(item.change)
    states = {}
    for model, changes in by_model.items():
        rows = queries.revisions(model, alias, list({c.pk for c in changes}))
        tombs = queries.tombstones(alias, model.CQRS_ID, list({c.key for c in changes}))
        for change in changes:
            row, row_updated = rows.get(change.pk, (None, None))
            tomb, tomb_updated = tombs.get(change.key, (None, None))
            states[(model, change.key)] = rules.State(row, tomb, row_updated, tomb_updated)
    return states


def _decide(item: _Item, states: dict, run: _Run) -> None:
    change, model = item.change, item.model
    state = states[(model, change.key)]
    repair = is_repair(item.envelope)
    verdict = rules.decide(change.signal_type, change.revision, state, change.updated, repair)
    applies = verdict == rules.APPLY
    note = revlog.note_for(change.signal_type, change.revision, state.row, applies)
    if verdict == rules.TOMBSTONED:
        note = revlog.TOMBSTONED
    elif not applies and rules.clock_disagrees(change.revision, change.updated, state):
        note = revlog.CLOCK
    if not applies:
        run.outcomes[item.index] = EventResult(
            IGNORED, rules.skip_reason(verdict, change.revision, state, change.updated),
            note=note, existing=state.row,
        )
        marked = rules.after_refusal(change.signal_type, change.revision, state, change.updated)
        if marked != state:
            states[(model, change.key)] = marked
            if run.in_bulk(model):
                run.plans.setdefault(model, writes.Plan()).mark(change)
            else:
                run.hooked.append(("mark", item))
        return
    if repair:
        _log_repair(model, change, state)
    states[(model, change.key)] = rules.after(change.signal_type, change.revision, state,
                                              change.updated, repair)
    run.outcomes[item.index] = EventResult(APPLIED, note=note, existing=state.row)
    if run.in_bulk(model):
        run.plans.setdefault(model, writes.Plan()).add(change, state.row is not None, repair)
    else:
        if repair:
            run.hooked.append(("forget", item))
        run.hooked.append(("call", item))


def is_repair(envelope: wire.Envelope) -> bool:
    """Tell whether the event is a repair SYNC (`cqrs_sync --repair`, the admin's repair)."""
    return envelope.signal_type == wire.SIGNAL_SYNC and \
        envelope.extra.get(wire.REPAIR_KEY) is True


def _log_repair(model: Any, change: mapping.Change, state: rules.State) -> None:
    if state.row is not None:
        was = f"revision {state.row}"
    elif state.tombstone is not None:
        was = f"no row (deleted at revision {state.tombstone})"
    else:
        was = "no row"
    logger.warning("Repairing %s:%s from the master: %s -> revision %s",
                   one_line(model.CQRS_ID, 200), one_line(change.key, 200), was,
                   change.revision)


def failure(exc: BaseException) -> EventResult:
    """Return the outcome of an event that raised `exc`: BAD for bad input, else FAILED."""
    cause = exc.error if isinstance(exc, HandlerFailed) and exc.error else exc
    reason = _describe(exc)
    if isinstance(cause, BadMessage):
        return EventResult(BAD, one_line(exc if cause is not exc else cause, REASON_CHARS), cause)
    if isinstance(cause, (DataError, OverflowError)):
        what = f"the database refused a value ({type(cause).__name__})"
        return EventResult(BAD, f"{what}: {one_line(exc, REASON_CHARS)}", cause)
    if isinstance(cause, RecursionError):
        return EventResult(BAD, f"the data nests too deeply: {reason}", cause)
    return EventResult(FAILED, reason, cause)


def _handler_failure(exc: BaseException) -> EventResult:
    outcome = failure(exc)
    if isinstance(exc, HandlerFailed):  # returned nothing, having said why
        return outcome
    return dataclasses.replace(outcome, raised=True)


def _raise_if_lost(alias: str, exc: BaseException) -> None:
    if isinstance(exc, HandlerFailed) and exc.error is not None:
        exc = exc.error
    if not isinstance(exc, (OperationalError, InterfaceError)) or not _lost(alias):
        return
    raise DatabaseUnavailable(f"database {alias!r} is unreachable: {exc}") from exc


def _lost(alias: str) -> bool:
    connection = connections[alias]
    if connection.connection is None:
        return True
    try:
        return not connection.is_usable()
    except DatabaseError:
        return True


def _describe(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}", REASON_CHARS)
