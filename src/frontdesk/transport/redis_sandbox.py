"""Sandbox faults shared by every process of an installation, in Redis: a fault switched on
through one API process is met by the sandbox of every worker process, and its ``remaining``
count is one count for them all (a Lua script takes the next sends atomically).

Faults are a rehearsal tool: with Redis away, no fault is in force (said once in the log)."""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.exceptions import RedisError

from frontdesk.core.models import Channel
from frontdesk.core.sandbox import Fault, FaultMode
from frontdesk.logs import get_logger

log = get_logger(__name__)

# KEYS[1]: the hash of faults by channel. ARGV: the channel, the number of sends.
# Returns, per send, the fault it meets as JSON, or false.
_TAKE = """
local met = {}
for i = 1, tonumber(ARGV[2]) do
  local raw = redis.call('HGET', KEYS[1], ARGV[1])
  if not raw then
    met[i] = false
  else
    met[i] = raw
    local fault = cjson.decode(raw)
    if fault.remaining ~= cjson.null then
      fault.remaining = fault.remaining - 1
      if fault.remaining <= 0 then
        redis.call('HDEL', KEYS[1], ARGV[1])
      else
        redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(fault))
      end
    end
  end
end
return met
"""


class RedisSandboxFaults:
    def __init__(self, redis: Redis, *, key_prefix: str = "frontdesk:") -> None:
        self._redis = redis
        self._key = f"{key_prefix}sandbox:faults"
        self._take = redis.register_script(_TAKE)
        self._redis_down = False

    async def set(self, channel: Channel, fault: Fault) -> None:
        await self._redis.hset(self._key, channel.value, _encode(fault))

    async def clear(self, channel: Channel) -> None:
        await self._redis.hdel(self._key, channel.value)

    async def current(self) -> dict[Channel, Fault]:
        stored = await self._redis.hgetall(self._key)
        return {Channel(_text(name)): _decode(raw) for name, raw in stored.items()}

    async def take(self, channel: Channel, sends: int) -> list[Fault | None]:
        try:
            met = await self._take(keys=[self._key], args=[channel.value, sends])
        except (RedisError, OSError):
            if not self._redis_down:
                self._redis_down = True
                log.warning("redis unreachable: no sandbox fault is in force")
            return [None] * sends
        self._redis_down = False
        return [_decode(raw) if raw else None for raw in met]


def _encode(fault: Fault) -> str:
    return json.dumps(
        {
            "mode": fault.mode.value,
            "remaining": fault.remaining,
            "retry_after_seconds": fault.retry_after_seconds,
        }
    )


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _decode(raw: bytes | str) -> Fault:
    fields = json.loads(raw)
    return Fault(FaultMode(fields["mode"]), fields["remaining"], fields["retry_after_seconds"])
