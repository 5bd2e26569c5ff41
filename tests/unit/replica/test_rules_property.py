"""Whatever the delivery, the revision rules leave the replica equal to the master.

A model master creates, updates, deletes (also through a stale instance, as django-cqrs
does), creates again and syncs a few rows, stamping each event with its clock as a
master does: saves of one life read the clock out of order by up to 400 ms (two hosts,
or two transactions racing for the row), a DELETE reads it after the row's last save,
and a re-creation after the DELETE. A model replica holds each row's state as the
tombstone table and the row do, and applies the rules to every delivered event.

The first test delivers every event at least once, with duplicates, in any order; what
the rules assume there is that saves of two lives of a row are more than the clock
tolerance apart. The second drops that assumption (a row is created again at once) and
keeps the delivery of the relay and one consumer: in order, with late copies.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from cqrs_outbox.replica import rules

START = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
MS = datetime.timedelta(milliseconds=1)
TICK = datetime.timedelta(microseconds=1)
PKS = (1, 2, 3)
OPS = ("save", "save", "save", "delete", "stale_delete", "sync")


@dataclass(frozen=True)
class Event:
    pk: int
    signal: str
    revision: int
    updated: datetime.datetime
    data: str | None


@dataclass
class Life:
    revision: int
    updated: datetime.datetime
    data: str
    born: datetime.datetime
    last_reading: datetime.datetime


@dataclass
class Master:
    """Rows as a master holds them, and the events it sends."""

    gap_between_lives: bool
    now: datetime.datetime = START
    rows: dict = field(default_factory=dict)  # pk -> Life
    deleted_at: dict = field(default_factory=dict)  # pk -> the last DELETE's reading
    last_of_life: dict = field(default_factory=dict)  # pk -> last save reading of a life
    events: list = field(default_factory=list)

    def run(self, pk: int, op: str, step_ms: int, lag_ms: int, stale: int) -> None:
        self.now += step_ms * MS
        life = self.rows.get(pk)
        if life is None:
            if op == "save":
                self._create(pk)
        elif op == "save":
            self._update(pk, life, lag_ms)
        elif op == "sync":
            self.events.append(Event(pk, "SYNC", life.revision, life.updated, life.data))
        else:
            self._delete(pk, life, stale if op == "stale_delete" else 0)

    def _create(self, pk: int) -> None:
        reading = max(self.now, self.deleted_at.get(pk, START) + TICK)
        if self.gap_between_lives and pk in self.last_of_life:
            reading = max(reading, self.last_of_life[pk] + rules.CLOCK_TOLERANCE + MS)
        self.now = reading
        data = f"{pk}@{len(self.events)}"
        self.rows[pk] = Life(0, reading, data, reading, reading)
        self.events.append(Event(pk, "SAVE", 0, reading, data))

    def _update(self, pk: int, life: Life, lag_ms: int) -> None:
        # Read before the row was locked: up to `lag_ms` earlier than now, never before
        # the row existed (a save loads the row first).
        reading = max(self.now - lag_ms * MS, life.born + TICK)
        data = f"{pk}@{len(self.events)}"
        self.rows[pk] = Life(life.revision + 1, reading, data, life.born,
                             max(life.last_reading, reading))
        self.events.append(Event(pk, "SAVE", life.revision + 1, reading, data))

    def _delete(self, pk: int, life: Life, stale: int) -> None:
        # A stale instance was read `stale` revisions ago: django-cqrs sends its
        # revision plus one. The clock is read after the delete, so after every save.
        revision = max(life.revision - stale, 0) + 1
        reading = max(self.now, life.last_reading + TICK)
        self.now = reading
        self.events.append(Event(pk, "DELETE", revision, reading, None))
        self.deleted_at[pk] = reading
        self.last_of_life[pk] = life.last_reading
        del self.rows[pk]

    def final(self) -> dict:
        return {pk: (life.revision, life.data) for pk, life in self.rows.items()}


class Replica:
    """A row and its tombstone per pk, changed only as the rules say."""

    def __init__(self) -> None:
        self.states: dict[int, rules.State] = {}
        self.data: dict[int, str] = {}

    def deliver(self, event: Event) -> None:
        state = self.states.get(event.pk, rules.State())
        verdict = rules.decide(event.signal, event.revision, state, event.updated)
        if verdict == rules.APPLY:
            self.states[event.pk] = rules.after(event.signal, event.revision, state,
                                                event.updated)
            if event.signal == "DELETE":
                self.data.pop(event.pk, None)
            else:
                self.data[event.pk] = event.data
        else:
            self.states[event.pk] = rules.after_refusal(event.signal, event.revision, state,
                                                        event.updated)

    def final(self) -> dict:
        return {pk: (s.row, self.data[pk]) for pk, s in self.states.items() if s.row is not None}


operations = st.lists(
    st.tuples(
        st.sampled_from(PKS),
        st.sampled_from(OPS),
        st.integers(0, 1500),  # ms since the previous operation
        st.integers(0, 400),  # ms the save's clock reading lags behind
        st.integers(0, 3),  # revisions a stale instance is behind
    ),
    min_size=1,
    max_size=30,
)


def _history(ops, gap_between_lives: bool) -> Master:
    master = Master(gap_between_lives)
    for op in ops:
        master.run(*op)
    return master


@settings(max_examples=500, deadline=None)
@given(ops=operations, data=st.data())
def test_any_order_with_duplicates__replica_ends_equal_to_the_master(ops, data):
    master = _history(ops, gap_between_lives=True)
    if not master.events:
        return
    copies = data.draw(st.lists(st.sampled_from(master.events), max_size=10))
    delivered = data.draw(st.permutations(master.events + copies))
    replica = Replica()
    for event in delivered:
        replica.deliver(event)
    assert replica.final() == master.final()


@settings(max_examples=500, deadline=None)
@given(ops=operations, data=st.data())
def test_in_order_with_late_copies__a_row_created_again_at_once_still_arrives(ops, data):
    master = _history(ops, gap_between_lives=False)
    delivered = list(master.events)
    for _ in range(data.draw(st.integers(0, 10)) if delivered else 0):
        index = data.draw(st.integers(0, len(master.events) - 1))
        later = data.draw(st.integers(delivered.index(master.events[index]) + 1,
                                      len(delivered)))
        delivered.insert(later, master.events[index])
    replica = Replica()
    for event in delivered:
        replica.deliver(event)
    assert replica.final() == master.final()
