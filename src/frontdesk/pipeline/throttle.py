"""A token bucket per provider account: a burst is smoothed to the rate the account allows.

Every worker of the process sending through one account shares its bucket, so the account
sees at most ``burst`` requests at once and ``rate`` per second after that; the queue holds
the rest. Waiting sends are served urgent first (see core.urgency), then in arrival order:
an order confirmation takes the next token, not the one after a broadcast's backlog.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from frontdesk.core.urgency import is_urgent


class TokenBucket:
    def __init__(
        self, rate_per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._refilled_at = clock()
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._dispenser: asyncio.Task[None] | None = None

    async def take(self) -> None:
        """Wait for a token, then use it."""
        self._refill()
        if not self._waiting and self._tokens >= 1:
            self._tokens -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if is_urgent() else 1, next(self._arrivals), turn))
        if self._dispenser is None or self._dispenser.done():
            self._dispenser = asyncio.create_task(self._dispense())
        await turn

    async def _dispense(self) -> None:
        while self._waiting:
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self._rate)
                continue
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter's token stays in the bucket
                self._tokens -= 1
                turn.set_result(None)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
