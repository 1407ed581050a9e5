"""One writer at a time, urgent writers first.

SQLite has a single writer. Queued first come, first served, an order confirmation's write
would wait behind every chunk of a broadcast already in line; here it waits for at most the one
write in progress.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteGate:
    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        if self._busy:
            turn = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._arrivals), turn))
            try:
                await turn
            except BaseException:
                # Cancelled after being handed the turn: hand it on. (Cancelled while still
                # waiting, the turn is a cancelled future that _hand_on skips.)
                if turn.done() and not turn.cancelled():
                    self._hand_on()
                raise
        else:
            self._busy = True
        try:
            yield
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = False
