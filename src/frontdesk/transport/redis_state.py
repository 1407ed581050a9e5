"""What several frontdesk processes must share, kept in Redis: each provider account's rate.

A token bucket in Redis, as GCRA (the generic cell rate algorithm): one key per account holds
the theoretical arrival time of the next send, and a Lua script (atomic) reserves the next
slot for each send and says how long to wait for it, by Redis's own clock. Every process
sending through the account reserves from the same key, so together they keep to its rate.

Redis is for speed, never correctness: when it cannot be reached, a process falls back to a
bucket of its own (the account may then see more than its rate, and answer 429s, which are
retried) and goes back to Redis as soon as it answers again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from frontdesk.core.urgency import is_urgent
from frontdesk.logs import get_logger
from frontdesk.pipeline.throttle import TokenBucket

log = get_logger(__name__)

# KEYS[1]: the account's key. ARGV: seconds between sends at the rate, the burst.
# Returns the seconds to wait before the reserved send may go.
_RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or now)
if next_free < now then next_free = now end
local allowed_at = next_free - (burst - 1) * interval
redis.call('SET', KEYS[1], tostring(next_free + interval),
           'PX', math.ceil((next_free + interval - now) * 1000) + 1000)
return tostring(math.max(0, allowed_at - now))
"""


class RedisTokenBucket:
    def __init__(self, redis: Redis, key: str, rate_per_second: float, burst: int) -> None:
        self._redis = redis
        self._key = key
        self._interval = 1.0 / rate_per_second
        self._burst = burst
        self._reserve = redis.register_script(_RESERVE)
        self._fallback = TokenBucket(rate_per_second, burst)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._dispenser: asyncio.Task[None] | None = None
        self._redis_down_since: float | None = None

    async def take(self) -> None:
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if is_urgent() else 1, next(self._arrivals), turn))
        if self._dispenser is None or self._dispenser.done():
            self._dispenser = asyncio.create_task(self._dispense())
        await turn

    async def _dispense(self) -> None:
        """Reserve slots one at a time, for the most urgent waiter first."""
        while self._waiting:
            wait = await self._reservation()
            if wait is None:
                await self._fallback.take()
            elif wait > 0:
                await asyncio.sleep(wait)
            while self._waiting:
                _, _, turn = heapq.heappop(self._waiting)
                if not turn.done():
                    turn.set_result(None)
                    break

    async def _reservation(self) -> float | None:
        """Seconds until the reserved slot, or None when Redis cannot be reached."""
        try:
            wait = float(await self._reserve(keys=[self._key], args=[self._interval, self._burst]))
        except (RedisError, OSError):
            if self._redis_down_since is None:
                self._redis_down_since = time.monotonic()
                log.warning("redis unreachable: rate limited by this process alone")
            return None
        if self._redis_down_since is not None:
            self._redis_down_since = None
            log.warning("redis reachable again: rate limits shared again")
        return wait
