"""Two frontdesk processes sending through one provider account keep, together, to its rate:
the account's token bucket lives in Redis. Redis is for speed only: without it (or while it
restarts) nothing is lost or sent twice."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from frontdesk.transport.redis_state import RedisTokenBucket
from tests.fakes.twilio import TwilioFake
from tests.support.client import Api, eventually, unique
from tests.support.databases import reachable_redis
from tests.support.instance import (
    ADMIN_KEY,
    configured,
    instance_of_its_own,
    providers_environment,
    running_instance,
)
from tests.support.serving import free_port

ACCOUNT_SID = "AC" + "5b1e" * 8
AUTH_TOKEN = "twilio-auth-token-shared-0b7d"
RATE_PER_SECOND = 100
BURST = 10
# Arrivals are timed by the fake, a little after the sends left two busy processes: that alone
# can bunch a few more into one second than the bucket let go. Without the shared bucket the
# peak is near twice the rate (and the fake answers 429s), so the bound still tells.
ARRIVAL_JITTER = 10
MESSAGES = 600


@pytest.fixture(params=["sqlite", "scale-out"])
async def two_senders(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Api, TwilioFake]]:
    redis_url = await reachable_redis()
    fake = TwilioFake(
        ACCOUNT_SID, AUTH_TOKEN, rate_per_second=RATE_PER_SECOND, burst=BURST + ARRIVAL_JITTER + 5
    )
    async with fake.serving():
        environment = {
            **providers_environment(
                "sms",
                {
                    "name": unique("shared-account"),  # one Redis key per run
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from": "+15005550006",
                    "base_url": fake.base_url,
                    "rate_per_second": RATE_PER_SECOND,
                    "burst": BURST,
                },
            ),
            "FRONTDESK_REDIS_URL": redis_url,
            "FRONTDESK_CHANNELS__SMS__CONCURRENCY": "50",
        }
        async with (
            configured(request.param, tmp_path) as (database, settings),
            running_instance(database, environment={**settings, **environment}) as (_, first_url),
            running_instance(database, environment={**settings, **environment}),
            httpx.AsyncClient(
                base_url=first_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
            ) as http,
        ):
            yield Api(http), fake


async def test_two_processes_sharing_an_account_keep_to_its_rate_together(
    two_senders: tuple[Api, TwilioFake],
) -> None:
    api, fake = two_senders
    template = await api.put_template({"channels": {"sms": {"text": "Your code is 4242"}}})
    gate = asyncio.Semaphore(32)

    async def user(index: int) -> str:
        async with gate:
            return await api.put_user(unique("shared"), phone=f"+1202555{index:04d}")

    users = await asyncio.gather(*(user(index) for index in range(MESSAGES)))
    response = await api.http.post(
        "/v1/notifications/batch",
        json={
            "notifications": [
                {"event_id": unique("evt"), "user_id": user_id, "template": template}
                for user_id in users
            ]
        },
    )
    assert response.status_code == 200, response.text

    async def all_arrived() -> bool:
        return len(fake.messages) >= MESSAGES

    await eventually(all_arrived, timeout=60, interval=0.5)
    arrivals = [message.at for message in fake.messages]
    seconds = max(arrivals) - min(arrivals)
    peak = fake.max_in_any_second()
    print(f"\n{MESSAGES} SMS from two processes in {seconds:.1f}s; peak {peak} in 1 s")
    assert fake.throttled == 0
    assert peak <= RATE_PER_SECOND + BURST + ARRIVAL_JITTER
    assert len({message.form["To"] for message in fake.messages}) == MESSAGES


async def test_without_redis_a_process_keeps_to_the_rate_on_its_own() -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    bucket = RedisTokenBucket(unreachable, unique("account"), rate_per_second=50, burst=5)
    started = time.monotonic()

    await asyncio.gather(*(bucket.take() for _ in range(20)))

    assert time.monotonic() - started >= 0.25  # 5 at once, then 15 at 50/s
    await unreachable.aclose()


@asynccontextmanager
async def redis_of_our_own(directory: Path) -> AsyncIterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test's own (the machine's stays up), and a way to restart it."""
    port = free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def restart() -> None:
        nonlocal server
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        yield url, restart
    finally:
        server.kill()
        server.wait()


async def test_redis_stopped_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN)
    async with redis_of_our_own(tmp_path) as (redis_url, restart), fake.serving():
        environment = {
            **providers_environment(
                "sms",
                {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from": "+15005550006",
                    "base_url": fake.base_url,
                    "rate_per_second": 150,
                },
            ),
            "FRONTDESK_REDIS_URL": redis_url,
        }
        async with instance_of_its_own("scale-out", tmp_path, environment=environment) as (
            api,
            _,
        ):
            template = await api.put_template({"channels": {"sms": {"text": "Code 4242"}}})
            users = [
                await api.put_user(unique("outage"), phone=f"+1203555{n:04d}")
                for n in range(MESSAGES)
            ]
            response = await api.http.post(
                "/v1/notifications/batch",
                json={
                    "notifications": [
                        {"event_id": unique("evt"), "user_id": user_id, "template": template}
                        for user_id in users
                    ]
                },
            )
            assert response.status_code == 200, response.text

            await eventually(lambda: _arrived(fake, MESSAGES // 4), timeout=30)
            subprocess.run(["redis-cli", "-u", redis_url, "shutdown", "nosave"], check=False)
            stopped = time.monotonic()
            await eventually(lambda: _arrived(fake, MESSAGES // 2), timeout=30)
            restart()
            restarted = time.monotonic()
            await eventually(lambda: _arrived(fake, MESSAGES), timeout=60)
            await asyncio.sleep(1)  # anything sent twice would arrive by now

    numbers = [message.form["To"] for message in fake.messages]
    assert len(numbers) == MESSAGES and len(set(numbers)) == MESSAGES
    # For the reader (pytest -s), not asserted: a timed test would measure the machine.
    arrivals = sorted(message.at for message in fake.messages)
    for name, start, end in (
        ("before the stop", arrivals[0], stopped),
        ("redis stopped", stopped, restarted),
        ("after the restart", restarted, arrivals[-1]),
    ):
        count = sum(1 for at in arrivals if start <= at <= end)
        print(f"{name}: {count} SMS in {end - start:.2f} s = {count / (end - start):.0f}/s")


async def _arrived(fake: TwilioFake, count: int) -> bool:
    return len(fake.messages) >= count
