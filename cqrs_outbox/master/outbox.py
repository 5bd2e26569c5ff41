"""Queue a transaction's CQRS events and write them in one INSERT just before COMMIT.

A save, delete, bulk write or SYNC queues its instance on the connection of its
database alias. When the transaction commits, the queue is flushed: each instance is
serialised as it is at that moment, and all events go into the outbox in one
multi-row INSERT, on the same connection and inside the same transaction. A serializer
therefore sees rows written after the save, as django-cqrs's serializers do.

How the flush is reached: the first time a connection queues an event, its `commit`,
`rollback` and `close` methods are wrapped (attributes of that `DatabaseWrapper`
instance, set once). Django ends every transaction through the first two: the outermost
`atomic()` calls `commit()` on exit, and so does `transaction.commit()` with
autocommit off. The wrapper flushes, then commits; if the flush fails it rolls back
and raises, so no committed change is left without its event. A connection closed
inside an atomic block ends its transaction too, and its queue is forgotten. On psycopg 3 the
INSERT carries the COMMIT in the same query (see `_commits_in_insert`).

Which queued instances still stand is decided as Django decides its `on_commit`
callbacks: each queue entry registers a do-nothing marker with `on_commit`, and at
flush only entries whose marker is still in `connection.run_on_commit` are written. A
rolled-back savepoint removes its markers, so it takes its events with it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models, transaction

from cqrs_outbox import conf, store, tracing
from cqrs_outbox.core import contract
from cqrs_outbox.master import events, onetrip, serialization

logger = logging.getLogger(__name__)

Key = tuple  # (cqrs_id, instance_pk text, signal_type, queue)
STATE_ATTR = "_cqrs_outbox_pending"
SAVES_ATTR = "_cqrs_saves"  # (transaction serial, saves in it) on an instance


def event_key(cqrs_id: str, pk: Any, signal_type: str, queue: str | None = None) -> Key:
    """Return the key under which one transaction keeps one event."""
    return (cqrs_id, str(pk), signal_type, queue)


@dataclass(eq=False)
class Entry:
    """One queued event: the instance to serialise at flush, or an event built already."""

    key: Key
    marker: Callable[[], None]
    instance: models.Model | None = None
    using: str = "default"
    event: contract.NewEvent | None = None
    event_id: int | None = None  # set once an early flush has inserted it
    dirty: bool = True
    trace: dict | None = None  # trace context active at the first save, sent as headers
    sids: list = field(default_factory=list)  # the savepoints open when `marker` was made
    # The saves of outer savepoint levels this one stands over, innermost last, each
    # (marker, sids, instance, event, event_id): a savepoint that rolls back takes only
    # its own save, and the entry goes back to the one below it.
    below: list = field(default_factory=list)

    def stands(self, alive: set) -> bool:
        """Go back past the saves whose savepoints rolled back; tell whether one is left."""
        while id(self.marker) not in alive:
            if not self.below:
                return False
            self.marker, self.sids, self.instance, self.event, self.event_id = self.below.pop()
            self.dirty = True  # the outbox row, if any, may hold the rolled-back save
        return True


@dataclass(eq=False)
class Pending:
    """The events queued on one connection in its current transaction, in order."""

    entries: dict = field(default_factory=dict)
    serial: int = 0  # counts finished transactions, for `cqrs_saves_count`
    saved: list = field(default_factory=list)  # instances whose save count ends at commit
    marker: Callable[[], None] | None = None
    marker_sids: list | None = None
    _seen: Any = None  # the run_on_commit list the alive set was read from
    _seen_len: int = 0
    _alive: set = field(default_factory=set)

    def alive(self, conn: Any) -> set:
        """Return the ids of the callables in `conn.run_on_commit`.

        Django only appends to that list while a transaction runs, and replaces it on
        any removal (savepoint rollback, rollback, commit), so the set is cached and
        extended while the list stays the same object.
        """
        hooks = conn.run_on_commit
        if hooks is not self._seen or len(hooks) < self._seen_len:
            self._seen, self._seen_len, self._alive = hooks, 0, set()
        for _, func, _ in hooks[self._seen_len:]:
            self._alive.add(id(func))
        self._seen_len = len(hooks)
        return self._alive

    def finish(self) -> None:
        """Forget everything: the transaction ended.

        The instances saved in it forget their save counts too, not only go stale by
        `serial`: another database's connection numbers its transactions on its own, and
        one of its numbers can match.
        """
        for instance in self.saved:
            instance.__dict__.pop(SAVES_ATTR, None)
        self.entries.clear()
        self.saved.clear()
        self.marker = self.marker_sids = None
        self.serial += 1


def state(alias: str, conn: Any) -> Pending:
    """Return the queue of `conn`, `alias`'s connection in this thread, hooking it on
    first use."""
    found = conn.__dict__.get(STATE_ATTR)
    if found is None:
        found = conn.__dict__[STATE_ATTR] = Pending()
        _hook(conn, found, alias)
    return found


def _hook(conn: Any, pending: Pending, alias: str) -> None:
    commit, rollback, close = conn.commit, conn.rollback, conn.close

    def commit_with_events() -> None:
        if pending.entries:
            try:
                _flush(alias, pending, commit=_commits_in_insert(conn))
            except BaseException:
                _abandon(conn)
                raise
        commit()
        pending.finish()

    def rollback_dropping_events() -> None:
        pending.finish()
        rollback()

    def close_ending_transaction() -> None:
        # Closed inside an atomic block, the connection takes its transaction with it (the
        # server rolls it back) with neither commit() nor rollback().
        if conn.in_atomic_block:
            pending.finish()
        close()

    conn.commit = commit_with_events
    conn.rollback = rollback_dropping_events
    conn.close = close_ending_transaction


def _commits_in_insert(conn: Any) -> bool:
    # psycopg 3 with client-side binding (Django's default) sends "INSERT ...; COMMIT"
    # as one query and, finding the server idle afterwards, sends no COMMIT of its own:
    # the event INSERT then costs no round trip. Other drivers commit on their own.
    if onetrip.active(conn):
        return True  # the driver is in autocommit: the COMMIT is ours to send
    dialect = store.dialect_of(conn)
    if dialect is None or not dialect.COMMIT_WITH_INSERT:
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3 and conn.settings_dict["OPTIONS"].get("server_side_binding") is not True


def _abandon(conn: Any) -> None:
    # Roll back before the error leaves commit(): Atomic only rolls back on a
    # DatabaseError, and re-enabling autocommit on SQLite would commit what is open.
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - a broken connection: dropping it ends the transaction
        conn.close()


def _current_marker(conn: Any, pending: Pending) -> Callable[[], None]:
    # One marker per savepoint level: entries queued at the same level live and die
    # together, so they can share it.
    sids = list(conn.savepoint_ids)
    marker = pending.marker
    if marker is None or pending.marker_sids != sids or id(marker) not in pending.alive(conn):

        def marker() -> None:
            """Stand in `on_commit` for queued events; Django drops it with its savepoint."""

        conn.on_commit(marker)
        pending.marker, pending.marker_sids = marker, sids
    return marker


def _standing(conn: Any, pending: Pending, key: Key) -> Entry | None:
    entry = pending.entries.get(key)
    if entry is not None and not entry.stands(pending.alive(conn)):
        del pending.entries[key]
        return None
    return entry


def queued(alias: str, key: Key) -> bool:
    """Tell whether this transaction has an event queued under `key`."""
    conn = connections[alias]
    pending = conn.__dict__.get(STATE_ATTR)
    if pending is None or not conn.in_atomic_block:
        return False
    return _standing(conn, pending, key) is not None


def enqueue(alias: str, key: Key, instance: models.Model | None = None,
            event: contract.NewEvent | None = None) -> None:
    """Queue the event of `instance` (or a built `event`) under `key`; needs a transaction.

    A second save of the same instance in the same transaction replaces the first: the
    one event is built from the last instance saved. Made inside a savepoint the first
    save is outside of, it replaces it only while that savepoint stands: if it rolls
    back, the event is built from the first save again.
    """
    conn = connections[alias]
    if not conn.in_atomic_block:
        # Called outside a transaction (a bulk signal sent by hand): open one, so the
        # marker is kept and the event is written at its commit.
        with transaction.atomic(using=alias, savepoint=False):
            enqueue(alias, key, instance, event)
        return
    pending = state(alias, conn)
    entry = _standing(conn, pending, key)
    marker = _current_marker(conn, pending)
    sids = pending.marker_sids
    if entry is None:
        pending.entries[key] = Entry(
            key, marker, instance, alias, event, trace=tracing.headers(), sids=sids
        )
        return
    if entry.sids[:len(sids)] != sids:
        # The standing save is of an outer level: keep it, for if this savepoint rolls back.
        entry.below.append((entry.marker, entry.sids, entry.instance, entry.event,
                            entry.event_id))
    # Otherwise it is of this level or of a savepoint released into it: it lives and dies
    # with this level, so it is simply replaced.
    entry.marker, entry.sids = marker, sids
    entry.instance, entry.event, entry.dirty = instance, event, True


def drop(alias: str, cqrs_id: str, pk: Any, signal_types: Iterable[str]) -> bool:
    """Drop the queued events of one row (a delete leaves only its DELETE event).

    Return whether an event still standing in this transaction was dropped.
    """
    conn = connections[alias]
    pending = conn.__dict__.get(STATE_ATTR)
    if pending is None or not conn.in_atomic_block:
        return False
    dropped = False
    for signal_type in signal_types:
        for key in [k for k in pending.entries if k[:3] == (cqrs_id, str(pk), signal_type)]:
            if pending.entries[key].event_id is None:
                dropped = dropped or _standing(conn, pending, key) is not None
                pending.entries.pop(key, None)
    return dropped


def seal(alias: str, key: Key) -> None:
    """Build the event queued under `key` now and keep it apart, so a later save of the
    same row in this transaction queues an event of its own.

    In a block marked for rollback (`transaction.set_rollback(True)`) nothing can be read,
    so the entry is kept apart unbuilt and built from its instance at commit, as
    django-cqrs builds every event; if its savepoint rolls back, it goes with it.
    """
    conn = connections[alias]
    pending = conn.__dict__.get(STATE_ATTR)
    entry = None if pending is None else _standing(conn, pending, key)
    if entry is None:
        return
    del pending.entries[key]
    if entry.event is None and not conn.needs_rollback:
        if entry.instance is not None:
            entry.event = events.build(entry.instance, key[2], alias, queue=key[3])
        if entry.event is None:
            return  # the row is filtered out: nothing to send
    entry.key = (*key, object())
    pending.entries[entry.key] = entry


def count_save(alias: str, instance: models.Model, conn: Any) -> None:
    """Count a save of `instance` in this transaction (django-cqrs's `cqrs_saves_count`);
    `conn` is `alias`'s connection."""
    if not conn.in_atomic_block:
        instance.__dict__.pop(SAVES_ATTR, None)
        return
    pending = state(alias, conn)
    serial, count = instance.__dict__.get(SAVES_ATTR, (pending.serial, 0))
    if serial != pending.serial:
        count = 0
    if count == 0:
        pending.saved.append(instance)
    instance.__dict__[SAVES_ATTR] = (pending.serial, count + 1)


def saves_count(alias: str, instance: models.Model) -> int:
    """Return how many times `instance` was saved in the current transaction."""
    found = instance.__dict__.get(SAVES_ATTR)
    if found is None:
        return 0
    pending = connections[alias].__dict__.get(STATE_ATTR)
    return found[1] if pending is not None and pending.serial == found[0] else 0


def flush(alias: str = "default") -> list[int]:
    """Write the events queued so far in this transaction now; return the new ids.

    Commit does this by itself. Call it to see the events inside a transaction that
    will not commit, such as a test's; later saves of the same rows rewrite them.
    """
    conn = connections[alias]
    pending = conn.__dict__.get(STATE_ATTR)
    if pending is None or not conn.in_atomic_block:
        return []
    return _flush(alias, pending)


def _flush(alias: str, pending: Pending, commit: bool = False) -> list[int]:
    conn = connections[alias]
    alive = pending.alive(conn)
    todo = []
    for key, entry in list(pending.entries.items()):
        if not entry.stands(alive):
            del pending.entries[key]
        elif entry.dirty:
            todo.append(entry)
    if not todo:
        return []
    for entry in todo:
        if entry.event is None and entry.instance is not None \
                and str(entry.instance.pk) != entry.key[1]:
            entry.instance = _reread(entry.instance, entry.key[1], alias)
    _refresh([e.instance for e in todo if e.event is None and e.instance is not None], alias)
    settings = conf.get()
    built = []
    for entry in todo:
        event = entry.event
        if event is None and entry.instance is not None:
            event = events.build(entry.instance, entry.key[2], alias, queue=entry.key[3],
                                 settings=settings)
        entry.dirty = False
        if event is not None:
            if entry.trace:
                event = dataclasses.replace(event, traceparent=entry.trace.get(
                    tracing.TRACEPARENT), tracestate=entry.trace.get(tracing.TRACESTATE))
            built.append((entry, event))
    return _write(alias, built, commit)


def _write(alias: str, built: list[tuple[Entry, contract.NewEvent]], commit: bool) -> list[int]:
    db = store.wrap(connections[alias])
    fresh = []
    for entry, event in built:
        if entry.event_id is None or not store.rewrite_event(db, entry.event_id, event):
            fresh.append((entry, event))
    if not fresh:
        return []
    if commit:
        store.insert_events_and_commit(db, [event for _, event in fresh])
        return []
    ids = store.insert_events(db, [event for _, event in fresh])
    for (entry, _), event_id in zip(fresh, ids, strict=True):
        entry.event_id = event_id
    return ids


def _reread(instance: models.Model, pk: str, alias: str) -> models.Model | None:
    """Return the row queued as `pk`, read from the database, for an instance whose pk
    changed after it was saved (Django's copy idiom: `pk = None`, then save again).

    The instance now stands for the copy, so the row saved first is built from what it
    holds in the database; its previous_data is not known any more. None if the row is
    gone (its event is then dropped: a delete that bypassed the ORM, see `outside`).
    """
    return type(instance)._base_manager.using(alias).filter(pk=pk).first()


def _refresh(instances: list[models.Model], alias: str) -> None:
    # Read back, one query per model, the fields saves wrote as F() expressions
    # (`cqrs_revision`), for models serialised from memory by the default to_cqrs_dict.
    by_model: dict = {}
    for instance in instances:
        model_cls = type(instance)
        if model_cls.CQRS_SERIALIZER or serialization.own_dict(model_cls):
            continue
        stale = serialization.expression_fields(instance)
        if stale:
            names, group = by_model.setdefault(model_cls, (set(), []))
            names.update(stale)
            group.append(instance)
    for model_cls, (names, group) in by_model.items():
        serialization.refresh_many(model_cls, alias, sorted(names), group)
