"""The suppression cache in Redis: it answers what it was told, never keeps an answer read
before a change, and without Redis knows nothing, raises nothing, names no address."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from redis.asyncio import Redis
from tests.support.client import unique
from tests.support.databases import reachable_redis
from tests.support.serving import free_port

from frontdesk.core.models import SuppressionKind
from frontdesk.logs import configure_logging
from frontdesk.transport.redis_state import RedisSuppressionCache


@pytest.fixture
async def cache() -> AsyncIterator[RedisSuppressionCache]:
    """A cache on the machine's Redis, under keys of this test's own."""
    redis = Redis.from_url(await reachable_redis())
    yield RedisSuppressionCache(redis, key_prefix=unique("test") + ":")
    await redis.aclose()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the test logs, as a deployment would write it."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_configuration = structlog.get_config()
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.configure(**saved_configuration)


def _email() -> tuple[str, str]:
    return ("email", f"{unique('someone')}@example.com")


async def test_remembered_answers_are_looked_up_and_others_are_unknown(
    cache: RedisSuppressionCache,
) -> None:
    bounced, clear, never_asked = _email(), _email(), _email()
    stopped = ("sms", "+12025550143")
    await cache.remember(
        {bounced: SuppressionKind.SUPPRESSED, stopped: SuppressionKind.OPTED_OUT, clear: None}
    )

    known = await cache.lookup([bounced, stopped, clear, never_asked])

    assert known == {
        bounced: SuppressionKind.SUPPRESSED,
        stopped: SuppressionKind.OPTED_OUT,
        clear: None,
    }


async def test_a_forgotten_address_is_unknown(cache: RedisSuppressionCache) -> None:
    address = _email()
    await cache.remember({address: None})

    await cache.forget([address])

    assert await cache.lookup([address]) == {}


async def test_an_answer_read_before_a_change_is_not_kept(cache: RedisSuppressionCache) -> None:
    address = _email()
    # One process read "not suppressed" from the store; another then committed a suppression
    # and forgot the address; only now does the first remember what it read.
    await cache.forget([address])

    await cache.remember({address: None})

    assert await cache.lookup([address]) == {}


async def test_a_fresher_answer_is_not_overwritten(cache: RedisSuppressionCache) -> None:
    address = _email()
    await cache.remember({address: SuppressionKind.SUPPRESSED})

    await cache.remember({address: None})

    assert await cache.lookup([address]) == {address: SuppressionKind.SUPPRESSED}


async def test_without_redis_nothing_is_known_nothing_raised_and_no_address_logged(
    log_stream: io.StringIO,
) -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    cache = RedisSuppressionCache(unreachable, key_prefix=unique("test") + ":")
    channel, address = _email()

    known = await cache.lookup([(channel, address)])
    await cache.remember({(channel, address): None})
    await cache.forget([(channel, address)])
    again = await cache.lookup([(channel, address)])

    assert known == again == {}
    logged = log_stream.getvalue()
    assert logged.count("redis unreachable") == 1
    assert address not in logged
    await unreachable.aclose()
