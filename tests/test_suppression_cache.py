"""The suppression list is cached in Redis, shared by every process: a suppression made
through one process stops the next send through another, whatever the cache knew before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.client import Api, unique
from tests.support.databases import reachable_redis
from tests.support.instance import ADMIN_KEY, configured, running_instance

WELCOME = {"channels": {"email": {"subject": "Welcome", "html": "<p>Welcome</p>"}}}


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[tuple[Api, Api, Redis, str]]:
    """Two frontdesk processes on one SQLite database and one Redis, each with its own API,
    orchestrator and workers; and that Redis, with the prefix of this test's keys."""
    redis_url = await reachable_redis()
    key_prefix = unique("suppression-cache") + ":"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with configured("sqlite", tmp_path) as (database, environment):
        environment = {
            **environment,
            "FRONTDESK_REDIS_URL": redis_url,
            "FRONTDESK_REDIS__KEY_PREFIX": key_prefix,
        }
        async with (
            running_instance(database, environment=environment) as (_, first_url),
            running_instance(database, environment=environment) as (_, second_url),
            httpx.AsyncClient(base_url=first_url, headers=headers, timeout=30) as first,
            httpx.AsyncClient(base_url=second_url, headers=headers, timeout=30) as second,
        ):
            redis = Redis.from_url(redis_url)
            try:
                yield Api(first), Api(second), redis, key_prefix
            finally:
                await redis.aclose()


async def test_a_suppression_through_one_process_stops_the_next_send_through_another(
    two_processes: tuple[Api, Api, Redis, str],
) -> None:
    first, second, redis, key_prefix = two_processes
    address = f"{unique('cached')}@example.com"
    user_id = await first.put_user(email=address)
    template = await first.put_template(WELCOME)
    welcomed = await first.send(user_id=user_id, template=template)
    (email,) = (await first.settled(welcomed.json()["id"]))["deliveries"]
    assert email["status"] == "sent"
    # The cache now says the address is not suppressed: were that answer kept, it would send.
    assert [key async for key in redis.scan_iter(match=f"{key_prefix}suppression:*")]

    suppressing = await second.http.put(
        f"/v1/suppressions/email/{address}", json={"reason": "bounced"}
    )
    again = await first.send(user_id=user_id, template=template)

    assert suppressing.status_code == 200, suppressing.text
    (email,) = (await first.settled(again.json()["id"]))["deliveries"]
    assert email["status"] == "suppressed"
