"""Run master writers, two relays and two replica consumers under fire, then check them.

    report = harness.run(harness.FAST, log_dir)
    print("\\n".join(report.lines()))

A run creates its own master and replica databases, exchange and queues, starts every
process, lets the monkey kill and cut for the profile's duration while the writers
write, stops the writers, heals everything, waits for the replica to converge, stops
the relays and consumers with SIGTERM and then checks the result (see checks.py). Every
database, queue, proxy and process of the run is removed at the end, pass or fail.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.chaos import checks, resources
from tests.faults.chaos.cluster import Cluster, Tuning
from tests.faults.chaos.monkey import Monkey
from tests.faults.chaos.tap import Tap

TICK = 0.1  # seconds between turns of the fault loop
SYNC_POLL = 0.5  # seconds between checks while waiting for the replica to converge
QUIET = 1.5  # seconds the replica queues must stay empty before the consumers stop
QUEUE_TIMEOUT = 60.0  # seconds the consumers get to empty their queue at the end
WRITER_GRACE = 30.0  # seconds past their time the writers may take to finish
FINAL_ROUNDS = 3  # times the consumers are started again to take messages left queued


@dataclass(frozen=True)
class Profile:
    """How long and how hard a run goes."""

    name: str
    seconds: float  # the writers write (and the monkey strikes) this long
    writers: int = 3
    writer_pause: float = 0.002  # seconds between a writer's operations
    pace: tuple[float, float] = (0.5, 2.0)  # seconds between faults
    outage: tuple[float, float] = (0.3, 3.0)  # seconds a refused or frozen link lasts
    down: tuple[float, float] = (0.0, 2.0)  # seconds a killed process stays dead
    converge_timeout: float = 90.0  # seconds
    progress_every: float | None = None  # seconds between progress lines
    tuning: Tuning = field(default_factory=Tuning)


FAST = Profile("fast", seconds=60.0, converge_timeout=60.0)


def long_profile(minutes: float) -> Profile:
    """Return a profile that writes and strikes for `minutes`, a bit slower per writer."""
    return Profile("long", seconds=minutes * 60, writer_pause=0.01, converge_timeout=600.0,
                   progress_every=60.0)


@dataclass
class Report:
    """What a run did and found."""

    profile: Profile
    seed: int
    run_id: str
    log_dir: Path
    writes: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)
    cuts: dict[str, int] = field(default_factory=dict)
    cut_targets: dict[str, int] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)
    deliveries: int = 0
    duplicates: int = 0
    converged_in: float | None = None
    figures: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """Return the report as lines to print."""
        p, f = self.profile, self.figures
        signals = ", ".join(f"{k.split()[0]} {v}" for k, v in f.items() if k.endswith(" events"))
        operations = {k: v for k, v in self.writes.items() if k != "errors"}
        converged = "never" if self.converged_in is None else f"{self.converged_in:.1f}s"
        return [
            f"chaos {p.name} profile: {p.seconds:.0f}s, {p.writers} writers, seed {self.seed}, "
            f"run {self.run_id}, logs in {self.log_dir}",
            f"events written: {f.get('events written', 0)} ({signals}) by "
            f"{sum(operations.values())} writer operations ({_counts(operations)}; "
            f"{self.writes.get('errors', 0)} collisions: deadlocks or rows deleted meanwhile)",
            f"kills: {sum(self.kills.values())} ({_counts(self.kills)}); exited by themselves: "
            f"{len(self.exits)}{' (' + '; '.join(self.exits) + ')' if self.exits else ''}",
            f"cuts: {sum(self.cuts.values())} ({_counts(self.cuts)}; {_counts(self.cut_targets)})",
            f"deliveries: {self.deliveries}, duplicates: {self.duplicates}",
            f"time to converge: {converged}",
            f"checked: {f.get('rows equal', 0)} rows equal, {f.get('deleted rows absent', 0)} "
            f"deleted rows absent, {f.get('replica changes logged', 0)} replica changes logged",
            "PASSED" if self.passed else f"FAILED: {len(self.problems)} problems",
            *(f"  - {problem}" for problem in self.problems),
        ]


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


def run(profile: Profile, log_dir: Path, *, seed: int | None = None,
        say: Callable[[str], None] = print) -> Report:
    """Run the profile; return the report (its `problems` are empty when it passed)."""
    seed = random.randrange(10**6) if seed is None else seed
    report = Report(profile, seed, uuid.uuid4().hex[:8], log_dir)
    names = resources.Names(report.run_id)
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.callback(resources.drop_databases, names)
        resources.create_databases(names, {})
        stack.callback(resources.delete_broker, names)
        resources.declare_broker(names)
        tap = Tap(names)
        stack.callback(tap.close)
        cluster = Cluster(names, log_dir, profile.tuning)
        stack.callback(cluster.close)
        _play(cluster, names, tap, profile, random.Random(seed), report, say)
    return report


def _play(cluster: Cluster, names: resources.Names, tap: Tap, profile: Profile,
          rng: random.Random, report: Report, say: Callable[[str], None]) -> None:
    _populate(cluster, profile, rng)
    for node in cluster.nodes:
        node.service.start()
    for writer in cluster.writers:
        writer.start()
    monkey = Monkey(cluster.nodes, rng, pace=profile.pace, outage=profile.outage,
                    down=profile.down)
    _rampage(cluster, monkey, names, profile, say)
    report.writes, problems = cluster.stop_writers()
    monkey.calm()
    report.converged_in = _converge(monkey, names, profile.converge_timeout)
    if report.converged_in is None:
        problems.append(f"the replica did not converge within {profile.converge_timeout:.0f}s")
    problems += cluster.stop(cluster.role("relay"))
    problems += _finish_consumers(cluster, names)
    tap.drain()
    outcome = checks.judge(names, tap.ids())
    report.kills = dict(monkey.kills)
    report.exits = [f"{node.name} exited with {code}" for node, code in monkey.exits]
    report.cuts, report.cut_targets = dict(monkey.cuts), dict(monkey.cut_targets)
    report.deliveries, report.duplicates = tap.total, tap.duplicates
    report.figures = outcome.figures
    report.problems = [*problems, *outcome.problems, *_queue_problems(names),
                       *_crashes(cluster, monkey)]


def _populate(cluster: Cluster, profile: Profile, rng: random.Random) -> None:
    cluster.add_standalone_relay("relay-a")
    cluster.add_django_relay("relay-b")
    cluster.add_consumer("consumer-a")
    cluster.add_consumer("consumer-b")
    for _ in range(profile.writers):
        cluster.add_writer(profile.seconds, rng.randrange(10**6), profile.writer_pause)


def _rampage(cluster: Cluster, monkey: Monkey, names: resources.Names, profile: Profile,
             say: Callable[[str], None]) -> None:
    """Strike until the writers are done (they stop by themselves after their time)."""
    started = time.monotonic()
    deadline = started + profile.seconds + WRITER_GRACE
    next_progress = started + (profile.progress_every or float("inf"))
    while any(w.alive for w in cluster.writers) and time.monotonic() < deadline:
        monkey.step()
        if time.monotonic() >= next_progress:
            next_progress += profile.progress_every or float("inf")
            events = sum(checks.outbox_statuses(names).values())
            say(f"[{time.monotonic() - started:5.0f}s] events {events}, pending "
                f"{checks.pending(names)}, kills {monkey.kill_count}, cuts {monkey.cut_count}, "
                f"exits {len(monkey.exits)}")
        time.sleep(TICK)


def _converge(monkey: Monkey, names: resources.Names, timeout: float) -> float | None:
    """Wait until the replica equals the master; return how long that took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        monkey.step(strike=False)
        if checks.in_sync(names):
            return time.monotonic() - started
        time.sleep(SYNC_POLL)
    return None


def _finish_consumers(cluster: Cluster, names: resources.Names) -> list[str]:
    """Let the consumers empty their queues, then stop them (again, if messages remain)."""
    consumers = cluster.role("consumer")
    problems: list[str] = []
    for _ in range(FINAL_ROUNDS):
        if not _queues_quiet(names):
            problems.append(f"the replica queues did not empty within {QUEUE_TIMEOUT:.0f}s")
        problems += cluster.stop(consumers)
        if not _waiting(names):
            return problems
        for node in consumers:
            node.service.start()
    problems.append(f"messages still queued after {FINAL_ROUNDS} rounds: {_waiting(names)}")
    return problems


def _waiting(names: resources.Names) -> int:
    counts = resources.queue_counts(names)
    broker = names.topology()
    return counts[broker.queue] + counts[broker.delay_queue]


def _queues_quiet(names: resources.Names) -> bool:
    deadline = time.monotonic() + QUEUE_TIMEOUT
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if _waiting(names):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET:
            return True
        time.sleep(0.2)
    return False


def _crashes(cluster: Cluster, monkey: Monkey) -> list[str]:
    """List unhandled errors, and consumers that stopped by themselves.

    A relay exits by design when its database is unreachable at start; a consumer waits
    for its services instead, so its exit is a failure, and so is any traceback.
    """
    problems = [f"{node.name} exited by itself with status {code}"
                for node, code in monkey.exits if node.role == "consumer"]
    for node in cluster.nodes:
        tracebacks = node.service.log().count("Traceback (most recent call last)")
        if tracebacks:
            problems.append(f"{node.name} logged {tracebacks} tracebacks: see "
                            f"{node.service.log_path}")
    return problems


def _queue_problems(names: resources.Names) -> list[str]:
    dead = resources.queue_counts(names)[names.topology().dead_letter_queue]
    if not dead:
        return []
    return [f"dead-lettered messages: {dead} (e.g. "
            f"{'; '.join(resources.dead_letter_reasons(names))})"]
