"""How long to wait before trying again: exponential back-off, with or without jitter.

The relay and the replica consumer use it after a broker or database outage (with
jitter, so that processes cut off together do not all come back at the same moment),
and the relay before re-publishing an event the broker refused (without).
"""

from __future__ import annotations

import random


def exponential(tries: int, first: float, longest: float) -> float:
    """Return `first` doubled `tries` times, but never more than `longest` (seconds)."""
    return min(longest, first * 2**tries)


def jittered(tries: int, first: float, longest: float) -> float:
    """Return a random pause between half and all of `exponential(tries, first, longest)`."""
    ceiling = exponential(tries, first, longest)
    return random.uniform(ceiling / 2, ceiling)
