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


class WaitingLine:
    """Sends waiting for their turn: urgent ones first, then in arrival order. A waiter whose
    task was cancelled loses its place and its turn goes to the next."""

    def __init__(self) -> None:
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def join(self) -> asyncio.Future[None]:
        """A place in the line: the future is done when it is this waiter's turn."""
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if is_urgent() else 1, next(self._arrivals), turn))
        return turn

    def admit_next(self) -> bool:
        """Give the turn to the first waiter still waiting; False when there is none."""
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return True
        return False


class TokenBucket:
    def __init__(
        self, rate_per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._refilled_at = clock()
        self._line = WaitingLine()
        self._dispenser: asyncio.Task[None] | None = None

    async def take(self) -> None:
        """Wait for a token, then use it."""
        self._refill()
        if not self._line and self._tokens >= 1:
            self._tokens -= 1
            return
        turn = self._line.join()
        if self._dispenser is None or self._dispenser.done():
            self._dispenser = asyncio.create_task(self._dispense())
        await turn

    async def _dispense(self) -> None:
        while self._line:
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self._rate)
                continue
            if self._line.admit_next():  # a cancelled waiter's token stays in the bucket
                self._tokens -= 1

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
