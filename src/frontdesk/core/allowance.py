"""Each API key's allowance of notifications, as GCRA (the generic cell rate algorithm).

One number per key: its theoretical arrival time, when the key would have used up exactly its
rate had it sent everything so far evenly. A request for ``count`` notifications moves it on
by ``count`` intervals; the request is admitted, whole, when the new time is no further ahead
of now than the burst allows, and is otherwise refused, whole, with the wait that would let it
in. Nothing is taken from a refused request, so a client that waits the answer's Retry-After
is admitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Allowance:
    rate_per_second: float
    burst: int

    def moved_on(self, arrival: float | None, now: float, count: int) -> float:
        """The key's arrival time once ``count`` more are sent. ``arrival`` is the time so far
        (None: a key not seen yet)."""
        start = now if arrival is None or arrival < now else arrival
        return start + count / self.rate_per_second

    def wait(self, moved_on: float, now: float) -> float:
        """Seconds until a request moving the arrival time on to ``moved_on`` fits in the
        burst: 0 when it fits now."""
        return max(0.0, moved_on - self.burst / self.rate_per_second - now)


class LocalAllowances:
    """Every key's allowance in this process's memory: one float per key that sent lately."""

    def __init__(self, allowance: Allowance, clock: Callable[[], float] = time.monotonic) -> None:
        self._allowance = allowance
        self._clock = clock
        self._arrivals: dict[str, float] = {}

    async def admit(self, key: str, count: int) -> float:
        now = self._clock()
        moved_on = self._allowance.moved_on(self._arrivals.get(key), now, count)
        wait = self._allowance.wait(moved_on, now)
        if wait == 0:
            if len(self._arrivals) > 10_000:  # a key whose arrival time has passed is whole
                self._arrivals = {k: at for k, at in self._arrivals.items() if at > now}
            self._arrivals[key] = moved_on
        return wait
