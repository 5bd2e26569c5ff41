"""Break the relays and consumers at random: SIGKILLs, dropped, refused and frozen links.

Every so often the monkey picks a relay or consumer and either SIGKILLs it (it is
started again a moment later, as a supervisor would) or troubles one of its two
connections through that process's proxy:

- cut:    drop the open connections; reconnecting works at once (a network blip)
- outage: drop them and refuse new ones for a while (the service is down)
- freeze: keep them open but forward nothing for a while (a silent partition)

It also restarts a process that exited by itself (a relay exits when its database is
down at start, by design) and counts those exits apart from the kills.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import random
import time
from collections.abc import Callable

from tests.faults.chaos.cluster import Node

CUT_KINDS = ("cut", "outage", "freeze")
KILL_WEIGHT = 3  # out of KILL_WEIGHT + one per cut kind: how often an action is a kill
CRASH_RESTART = 1.0  # seconds before a process that exited by itself is started again


class Monkey:
    """Apply random faults to `nodes`, one every `pace` seconds (a (low, high) range)."""

    def __init__(self, nodes: list[Node], rng: random.Random, *, pace: tuple[float, float],
                 outage: tuple[float, float], down: tuple[float, float]) -> None:
        self.nodes = nodes
        self.rng = rng
        self.pace = pace
        self.outage = outage
        self.down = down
        self.kills: collections.Counter[str] = collections.Counter()  # by node name
        self.cuts: collections.Counter[str] = collections.Counter()  # by kind
        self.cut_targets: collections.Counter[str] = collections.Counter()  # 'relay db', ...
        self.exits: list[tuple[Node, int | None]] = []  # exits without a kill, and the status
        self._agenda: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._restarting: set[str] = set()
        self._next = time.monotonic() + rng.uniform(*pace)

    # -- driving -----------------------------------------------------------------------

    def step(self, *, strike: bool = True) -> None:
        """Do whatever is due now: undo earlier faults, restart, maybe strike again."""
        now = time.monotonic()
        while self._agenda and self._agenda[0][0] <= now:
            _, _, action = heapq.heappop(self._agenda)
            action()
        self._watch()
        if strike and now >= self._next:
            self._strike()
            self._next = now + self.rng.uniform(*self.pace)

    def calm(self) -> None:
        """Undo every fault at once and make sure every process runs."""
        agenda, self._agenda = self._agenda, []
        for _, _, action in sorted(agenda):
            action()
        for node in self.nodes:
            node.database.open()
            node.database.thaw()
            node.broker.open()
            node.broker.thaw()
        self._watch()
        for node in self.nodes:
            if not node.service.alive:
                self._restart(node)

    @property
    def kill_count(self) -> int:
        return sum(self.kills.values())

    @property
    def cut_count(self) -> int:
        return sum(self.cuts.values())

    # -- faults ------------------------------------------------------------------------

    def _strike(self) -> None:
        node = self.rng.choice(self.nodes)
        kind = self.rng.choices(["kill", *CUT_KINDS], [KILL_WEIGHT, 1, 1, 1])[0]
        if kind == "kill":
            self._kill(node)
            return
        link = self.rng.choice(["database", "broker"])
        proxy = node.database if link == "database" else node.broker
        self.cuts[kind] += 1
        self.cut_targets[f"{node.role} {link}"] += 1
        if kind == "cut":
            proxy.cut()
        elif kind == "outage":
            proxy.close()
            self._later(self.rng.uniform(*self.outage), proxy.open)
        else:
            proxy.freeze()
            self._later(self.rng.uniform(*self.outage), proxy.thaw)

    def _kill(self, node: Node) -> None:
        if node.name in self._restarting:
            return  # already down, waiting to come back
        node.service.kill()
        self.kills[node.name] += 1
        self._restarting.add(node.name)
        self._later(self.rng.uniform(*self.down), lambda: self._restart(node))

    def _watch(self) -> None:
        for node in self.nodes:
            if node.name in self._restarting or node.service.alive:
                continue
            self.exits.append((node, node.service.exit_code))
            self._restarting.add(node.name)
            self._later(CRASH_RESTART, lambda node=node: self._restart(node))

    def _restart(self, node: Node) -> None:
        self._restarting.discard(node.name)
        if not node.service.alive:
            node.service.start()

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (time.monotonic() + delay, next(self._order), action))
