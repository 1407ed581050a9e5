"""What several frontdesk processes must share, kept in Redis: each provider account's rate,
each API key's ingest allowance, each user's frequency caps and collapse windows (see
RedisFrequencyLedger below), and what the suppression list says of an address (see
RedisSuppressionCache at the end).

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
import hashlib
import json
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from frontdesk.core.allowance import Allowance, LocalAllowances
from frontdesk.core.models import SuppressionKind
from frontdesk.logs import get_logger
from frontdesk.pipeline.frequency import ActivitySource, Cap, FrequencyLedger
from frontdesk.pipeline.throttle import TokenBucket, WaitingLine

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
        self._line = WaitingLine()
        self._dispenser: asyncio.Task[None] | None = None
        self._redis_down = False

    async def take(self) -> None:
        turn = self._line.join()
        if self._dispenser is None or self._dispenser.done():
            self._dispenser = asyncio.create_task(self._dispense())
        await turn

    async def _dispense(self) -> None:
        """Reserve slots one at a time, each for the waiter first in line when it comes."""
        while self._line:
            wait = await self._reservation()
            if wait is None:
                await self._fallback.take()
            elif wait > 0:
                await asyncio.sleep(wait)
            self._line.admit_next()

    async def _reservation(self) -> float | None:
        """Seconds until the reserved slot, or None when Redis cannot be reached."""
        try:
            wait = float(await self._reserve(keys=[self._key], args=[self._interval, self._burst]))
        except (RedisError, OSError):
            if not self._redis_down:
                self._redis_down = True
                log.warning("redis unreachable: rate limited by this process alone")
            return None
        if self._redis_down:
            self._redis_down = False
            log.warning("redis reachable again: rate limits shared again")
        return wait


# KEYS[1]: the API key's arrival time (see core.allowance). ARGV: the rate per second, the
# burst, the count asked for. Returns the seconds to wait: "0" when admitted (and taken).
_ADMIT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then arrival = now end
local moved_on = arrival + tonumber(ARGV[3]) / rate
local wait = moved_on - tonumber(ARGV[2]) / rate - now
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(moved_on), 'PX', math.ceil((moved_on - now) * 1000) + 1000)
return "0"
"""


class RedisAllowances:
    """Every API key's allowance in Redis, by Redis's clock: all processes count against it
    together. When Redis cannot be reached, each process keeps its own count meanwhile."""

    def __init__(self, redis: Redis, key_prefix: str, allowance: Allowance) -> None:
        self._prefix = key_prefix
        self._allowance = allowance
        self._admit = redis.register_script(_ADMIT)
        self._fallback = LocalAllowances(allowance)
        self._redis_down = False

    async def admit(self, key: str, count: int) -> float:
        rate, burst = self._allowance.rate_per_second, self._allowance.burst
        try:
            wait = float(await self._admit(keys=[self._prefix + key], args=[rate, burst, count]))
        except (RedisError, OSError):
            if not self._redis_down:
                self._redis_down = True
                log.warning("redis unreachable: ingest allowances counted by this process alone")
            return await self._fallback.admit(key, count)
        if self._redis_down:
            self._redis_down = False
            log.warning("redis reachable again: ingest allowances shared again")
        return wait


# Each decision first checks that the user was seeded from the store (KEYS[1], the marker),
# answering -1 when not: the caller seeds and asks again. A decision keeps the marker alive at
# least as long as what it records, so that the user is never seeded twice over live data.

# KEYS: the marker, the user's sends on one channel and category (a sorted set of times).
# ARGV: now, the cap's window in seconds, its count, a member unique to this send, how long
# the marker lives. Returns 1 when the cap is reached (nothing recorded), else 0 (counted).
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 1 end
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5]) * 1000))
return 0
"""

# KEYS: the marker, the user's collapse key. ARGV: now, the window, this notification's id,
# how long the marker lives. Returns the id of the notification this one collapses into, or
# 0 (it is the first).
_COLLAPSE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local first = redis.call('HMGET', KEYS[2], 'id', 'at')
local now = tonumber(ARGV[1])
if first[1] and first[1] ~= ARGV[3] and now - tonumber(first[2]) < tonumber(ARGV[2]) then
  return first[1]
end
redis.call('HSET', KEYS[2], 'id', ARGV[3], 'at', ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) * 1000))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 1000))
return 0
"""

# KEYS[1]: the user's marker. ARGV[1]: how long it lives; ARGV[2]: the seed as JSON
# {"sends": [[key, at, member, window]], "firsts": [[key, id, at, window]]}. Only the first
# process to seed a user does it.
_SEED = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', math.ceil(tonumber(ARGV[1]) * 1000)) == false then
  return 0
end
local seed = cjson.decode(ARGV[2])
for _, send in ipairs(seed.sends) do
  redis.call('ZADD', send[1], send[2], send[3])
  redis.call('PEXPIRE', send[1], math.ceil(send[4] * 1000))
end
for _, first in ipairs(seed.firsts) do
  redis.call('HSET', first[1], 'id', first[2], 'at', first[3])
  redis.call('PEXPIRE', first[1], math.ceil(first[4] * 1000))
end
return 1
"""


class RedisFrequencyLedger:
    """Frequency caps and collapse windows shared by every orchestrator process: each decision
    is one Lua script, atomic across them. A user is seeded from the store the first time any
    process meets them (the store stays the source of truth: a Redis that lost everything is
    seeded again). Redis unreachable: this process decides alone, from its own ledger."""

    def __init__(
        self,
        redis: Redis,
        source: ActivitySource,
        caps: Mapping[str, Cap],
        fallback: FrequencyLedger,
        *,
        key_prefix: str = "frontdesk:",
        horizon_seconds: float = 86400,
    ) -> None:
        self._prefix = f"{key_prefix}ledger:"
        self._redis = redis
        self._source = source
        self._caps = caps
        self._fallback = fallback
        self._horizon = max([horizon_seconds, *(cap.per_seconds for cap in caps.values())])
        self._take = redis.register_script(_TAKE)
        self._collapse = redis.register_script(_COLLAPSE)
        self._seed = redis.register_script(_SEED)
        self._redis_down = False

    async def prepare(self, user_ids: list[str], now: datetime) -> None:
        users = sorted(set(user_ids))
        try:
            flags = await self._redis.mget([self._marker(u) for u in users]) if users else []
            await self._seed_from_store(
                [u for u, f in zip(users, flags, strict=True) if not f], now
            )
            self._reachable()
        except (RedisError, OSError):
            self._unreachable()

    async def take(self, user_id: str, channel: str, category: str, now: datetime) -> Cap | None:
        cap = self._caps.get(category)
        if cap is None:
            return None
        try:
            keys = [self._marker(user_id), self._sends(user_id, channel, category)]
            args: list[str | float] = [
                now.timestamp(),
                cap.per_seconds,
                cap.count,
                uuid.uuid4().hex,
                self._horizon,
            ]
            capped = int(await self._take(keys=keys, args=args))
            if capped < 0:
                await self._seed_from_store([user_id], now)
                capped = int(await self._take(keys=keys, args=args))
        except (RedisError, OSError):
            self._unreachable()
            # Seeded from the store only now: with Redis up, this ledger is never asked.
            await self._fallback.prepare([user_id], now)
            return await self._fallback.take(user_id, channel, category, now)
        self._reachable()
        return cap if capped == 1 else None

    async def collapsed_into(
        self,
        user_id: str,
        collapse_key: str,
        window_seconds: float,
        notification_id: str,
        now: datetime,
    ) -> str | None:
        try:
            keys = [self._marker(user_id), self._first(user_id, collapse_key)]
            args: list[str | float] = [
                now.timestamp(),
                window_seconds,
                notification_id,
                self._horizon,
            ]
            first = await self._collapse(keys=keys, args=args)
            if first == -1:
                await self._seed_from_store([user_id], now)
                first = await self._collapse(keys=keys, args=args)
        except (RedisError, OSError):
            self._unreachable()
            await self._fallback.prepare([user_id], now)
            return await self._fallback.collapsed_into(
                user_id, collapse_key, window_seconds, notification_id, now
            )
        self._reachable()
        return first.decode() if isinstance(first, bytes) else None

    async def _seed_from_store(self, user_ids: list[str], now: datetime) -> None:
        if not user_ids:
            return
        sends, keyed = await self._source.recent_activity(
            user_ids, now - timedelta(seconds=self._horizon)
        )
        for user_id in user_ids:
            seed = {
                "sends": [
                    [
                        self._sends(user_id, channel, category),
                        at.timestamp(),
                        uuid.uuid4().hex,
                        self._caps[category].per_seconds,
                    ]
                    for owner, channel, category, at in sends
                    if owner == user_id and category in self._caps
                ],
                "firsts": [
                    [self._first(user_id, key), notification_id, at.timestamp(), self._horizon]
                    # Oldest last: the first of each key overwrites later ones.
                    for owner, key, notification_id, at in sorted(keyed, key=lambda k: k[3])[::-1]
                    if owner == user_id
                ],
            }
            await self._seed(keys=[self._marker(user_id)], args=[self._horizon, json.dumps(seed)])

    def _marker(self, user_id: str) -> str:
        return f"{self._prefix}{user_id}:seeded"

    def _sends(self, user_id: str, channel: str, category: str) -> str:
        return f"{self._prefix}{user_id}:sends:{channel}:{category}"

    def _first(self, user_id: str, collapse_key: str) -> str:
        return f"{self._prefix}{user_id}:first:{collapse_key}"

    def _unreachable(self) -> None:
        if not self._redis_down:
            self._redis_down = True
            log.warning("redis unreachable: frequency caps decided by this process alone")

    def _reachable(self) -> None:
        if self._redis_down:
            self._redis_down = False
            log.warning("redis reachable again: frequency caps shared again")


# What the cache holds for a (channel, address) pair besides a SuppressionKind's value: that it
# is not on the list, or that its entry just changed (an answer read before must not be kept).
_NOT_SUPPRESSED = "not_suppressed"
_CHANGED = "changed"
_KINDS = frozenset(kind.value for kind in SuppressionKind)
# A stale "not suppressed" sends to someone who asked not to be sent to, so that answer lives
# only as long as a forget that never arrived (a crash between commit and forget, Redis out of
# reach just then) may be tolerated: a minute. That still covers a notification's two checks,
# orchestrating and sending, and a burst to one user. A stale "suppressed" withholds messages,
# the safer side, and suppressed addresses are asked about again and again with nothing sent:
# five minutes.
_NOT_SUPPRESSED_SECONDS = 60
_SUPPRESSED_SECONDS = 300
# Far longer than a store read takes from its query to its remember: an answer read before
# the change finds the marker still there, and is dropped.
_CHANGED_SECONDS = 30


class RedisSuppressionCache:
    """The suppression list's answers, shared by every process, in front of the store.

    The race to close: a process reads "not suppressed", another commits a suppression and
    forgets the pair, then the first remembers its stale answer. So a forget does not delete:
    it leaves a "changed" marker for a while, and remember only writes where nothing is (SET
    NX): a marker, or a fresher answer, stays. A marker is unknown to lookup: the store answers.

    Keys are the SHA-256 of the pair, not the address: addresses are personal data, and Redis
    keys are what SCAN, MONITOR and the slow log show to whoever operates Redis.
    Redis unreachable: nothing is known, nothing is kept, nothing raised.
    """

    def __init__(self, redis: Redis, *, key_prefix: str = "frontdesk:") -> None:
        self._prefix = f"{key_prefix}suppression:"
        self._redis = redis
        self._redis_down = False

    async def lookup(
        self, addresses: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], SuppressionKind | None]:
        pairs = list(addresses)
        if not pairs:
            return {}
        try:
            values = await self._redis.mget([self._key(pair) for pair in pairs])
        except (RedisError, OSError):
            self._unreachable()
            return {}
        self._reachable()
        known: dict[tuple[str, str], SuppressionKind | None] = {}
        for pair, value in zip(pairs, values, strict=True):
            answer = value.decode() if isinstance(value, bytes) else value
            if answer == _NOT_SUPPRESSED:
                known[pair] = None
            elif answer in _KINDS:
                known[pair] = SuppressionKind(answer)
        return known

    async def remember(self, answers: Mapping[tuple[str, str], SuppressionKind | None]) -> None:
        if not answers:
            return
        pipeline = self._redis.pipeline(transaction=False)
        for pair, kind in answers.items():
            if kind is None:
                pipeline.set(self._key(pair), _NOT_SUPPRESSED, ex=_NOT_SUPPRESSED_SECONDS, nx=True)
            else:
                pipeline.set(self._key(pair), kind.value, ex=_SUPPRESSED_SECONDS, nx=True)
        await self._execute(pipeline)

    async def forget(self, addresses: Collection[tuple[str, str]]) -> None:
        if not addresses:
            return
        pipeline = self._redis.pipeline(transaction=False)
        for pair in addresses:
            pipeline.set(self._key(pair), _CHANGED, ex=_CHANGED_SECONDS)
        await self._execute(pipeline)

    async def _execute(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.execute()
        except (RedisError, OSError):
            self._unreachable()
            return
        self._reachable()

    def _key(self, pair: tuple[str, str]) -> str:
        channel, address = pair
        return self._prefix + hashlib.sha256(f"{channel}:{address}".encode()).hexdigest()

    def _unreachable(self) -> None:
        if not self._redis_down:
            self._redis_down = True
            log.warning("redis unreachable: suppressions read from the store alone")

    def _reachable(self) -> None:
        if self._redis_down:
            self._redis_down = False
            log.warning("redis reachable again: suppressions cached again")
