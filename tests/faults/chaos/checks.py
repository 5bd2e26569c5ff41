"""What a chaos run must end with, read straight from the databases and the tap.

- every master row equals its replica row, field by field, revision and timestamp too;
- every row deleted at the master is absent at the replica;
- the replica's revision log never shows a row going back to an older revision, nor a
  deleted row coming back at or below the revision it was deleted at;
- every outbox event was published (none pending or failed) and reached the exchange.
"""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass, field

from tests.faults.chaos import resources

COLUMNS = "id, name, counter, note, cqrs_revision, cqrs_updated"
FIELDS = COLUMNS.split(", ")
EXAMPLES = 5  # examples listed per kind of problem


@dataclass
class Outcome:
    """Problems found (empty when the run passed) and figures worth printing."""

    problems: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, examples: list) -> None:
        """Record a problem of `kind` with a few of its `examples`, if there are any."""
        if examples:
            shown = "; ".join(str(e) for e in examples[:EXAMPLES])
            self.problems.append(f"{kind}: {len(examples)} (e.g. {shown})")


# -- reading ------------------------------------------------------------------------------


def rows(database: str, table: str) -> dict[int, tuple]:
    """Return {pk: (name, counter, note, revision, updated)} of a chaos table."""
    found = resources.query(database, f"SELECT {COLUMNS} FROM {table}")
    return {row[0]: tuple(row[1:]) for row in found}


def deleted_at(names: resources.Names) -> dict[int, int]:
    """Return {pk: revision of its DELETE event} for the rows the master deleted."""
    found = resources.query(
        names.master_db,
        "SELECT instance_pk::bigint, MAX((payload::json->'instance_data'->>'cqrs_revision')::int)"
        " FROM cqrs_outbox_event WHERE cqrs_id = %s AND signal_type = 'DELETE' GROUP BY 1",
        (resources.CQRS_ID,),
    )
    return dict(found)


def outbox_statuses(names: resources.Names) -> dict[str, int]:
    """Return the outbox's event count per status."""
    found = resources.query(
        names.master_db, "SELECT status, COUNT(*) FROM cqrs_outbox_event GROUP BY status")
    return dict(found)


def events_by_signal(names: resources.Names) -> dict[str, int]:
    """Return the outbox's event count per signal type."""
    found = resources.query(
        names.master_db, "SELECT signal_type, COUNT(*) FROM cqrs_outbox_event GROUP BY 1")
    return dict(found)


def pending(names: resources.Names) -> int:
    """Return how many outbox events wait to be published."""
    return outbox_statuses(names).get("pending", 0)


def in_sync(names: resources.Names) -> bool:
    """Tell whether nothing waits in the outbox and the replica equals the master."""
    if pending(names):
        return False
    return (rows(names.master_db, resources.MASTER_TABLE)
            == rows(names.replica_db, resources.REPLICA_TABLE))


# -- judging ------------------------------------------------------------------------------


def compare(master: dict[int, tuple], replica: dict[int, tuple], deleted: dict[int, int],
            outcome: Outcome) -> None:
    """Check the replica holds exactly the master's rows, and none of the deleted ones."""
    differing = []
    for pk in sorted(master.keys() & replica.keys()):
        if master[pk] != replica[pk]:
            changed = [f"{name} {_show(a)} != {_show(b)}" for name, a, b
                       in zip(FIELDS[1:], master[pk], replica[pk], strict=True) if a != b]
            differing.append(f"pk {pk}: master {', '.join(changed)} at replica")
    outcome.add("rows differing from the master", differing)
    missing = sorted(master.keys() - replica.keys())
    outcome.add("master rows missing at the replica", [f"pk {pk}" for pk in missing])
    extra = sorted(replica.keys() - master.keys())
    resurrected = [f"pk {pk} (deleted at r{deleted[pk]}, replica r{replica[pk][3]})"
                   for pk in extra if pk in deleted]
    outcome.add("rows deleted at the master but present at the replica", resurrected)
    unknown = [f"pk {pk}" for pk in extra if pk not in deleted]
    outcome.add("replica rows the master never committed", unknown)
    outcome.figures["rows equal"] = len(master) - len(differing) - len(missing)
    outcome.figures["deleted rows absent"] = len(deleted.keys() - replica.keys())


def _show(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime.datetime) else repr(value)


def replay_log(log: list[tuple], deleted: dict[int, int], outcome: Outcome) -> None:
    """Walk the replica's revision log per row; flag every step back in revision."""
    current: dict[int, int] = {}
    gone: dict[int, int] = {}  # pk -> revision it was deleted at
    backwards, revived = [], []
    for seq, pk, op, old, new in log:
        if op == "DELETE":
            gone[pk] = max(old + 1, deleted.get(pk, 0), gone.get(pk, 0))
            current.pop(pk, None)
            continue
        last = old if op == "UPDATE" else current.get(pk)
        if last is not None and new < last:
            backwards.append(f"pk {pk}: r{last} -> r{new} ({op} #{seq})")
        if op == "INSERT" and pk in gone and new <= gone[pk]:
            revived.append(f"pk {pk}: deleted at r{gone[pk]}, inserted again at r{new} (#{seq})")
        current[pk] = new
    outcome.add("replica rows seen going back to an older revision", backwards)
    outcome.add("replica rows re-inserted at or below their deleted revision", revived)
    outcome.figures["replica changes logged"] = len(log)


def delivered(outbox_ids: set[int], tap_ids: set[int], outcome: Outcome) -> None:
    """Check every outbox event reached the exchange at least once."""
    lost = sorted(outbox_ids - tap_ids)
    outcome.add("events marked published that never reached the exchange",
                [f"event {i}" for i in lost])
    strange = sorted(tap_ids - outbox_ids)
    outcome.add("deliveries of events the outbox does not show as published",
                [f"event {i}" for i in strange])


def statuses(counts: dict[str, int], outcome: Outcome) -> None:
    """Check every event was published: none pending, failed or returned."""
    for status, count in sorted(counts.items()):
        if status != "published":
            outcome.problems.append(f"outbox events left {status}: {count}")


def judge(names: resources.Names, tap_ids: set[int]) -> Outcome:
    """Run every check on the final state of the run."""
    outcome = Outcome()
    deleted = deleted_at(names)
    master = rows(names.master_db, resources.MASTER_TABLE)
    replica = rows(names.replica_db, resources.REPLICA_TABLE)
    compare(master, replica, deleted, outcome)
    log = resources.query(
        names.replica_db,
        f"SELECT seq, pk, op, old_revision, new_revision FROM {resources.LOG_TABLE} ORDER BY seq")
    replay_log(log, deleted, outcome)
    statuses(outbox_statuses(names), outcome)
    outbox_ids = {row[0] for row in resources.query(
        names.master_db, "SELECT id FROM cqrs_outbox_event WHERE status = 'published'")}
    delivered(outbox_ids, tap_ids, outcome)
    by_signal = collections.Counter(events_by_signal(names))
    outcome.figures["events written"] = sum(by_signal.values())
    for signal_type, count in sorted(by_signal.items()):
        outcome.figures[f"{signal_type} events"] = count
    return outcome
