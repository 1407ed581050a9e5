"""Frequency caps and collapse windows hold across orchestrator processes: they are decided
in Redis, atomically, each user seeded once from the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.client import Api, unique
from tests.support.databases import reachable_redis
from tests.support.instance import ADMIN_KEY, configured, running_instance

# TEST_ENVIRONMENT caps marketing at 3 a day per user and channel.
CAP = 3


@pytest.fixture(params=["sqlite", "scale-out"])
async def two_orchestrators(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Api, Api]]:
    """Two frontdesk processes on one database, each with its own API and orchestrator."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with configured(request.param, tmp_path) as (database, environment):
        environment = {"FRONTDESK_REDIS_URL": await reachable_redis(), **environment}
        async with (
            running_instance(database, environment=environment) as (_, first_url),
            running_instance(database, environment=environment) as (_, second_url),
            httpx.AsyncClient(base_url=first_url, headers=headers, timeout=30) as first,
            httpx.AsyncClient(base_url=second_url, headers=headers, timeout=30) as second,
        ):
            yield Api(first), Api(second)


async def test_a_cap_of_three_admits_exactly_three_across_processes(
    two_orchestrators: tuple[Api, Api],
) -> None:
    first, second = two_orchestrators
    user_id = await first.put_user()
    template = await first.put_template(
        {"category": "marketing", "channels": {"in_app": {"title": "Sale", "body": "Now on"}}}
    )

    sent = await asyncio.gather(
        *((first if n % 2 else second).send(user_id=user_id, template=template) for n in range(10))
    )

    statuses = []
    for response in sent:
        assert response.status_code == 202, response.text
        (delivery,) = (await first.settled(response.json()["id"]))["deliveries"]
        statuses.append((delivery["status"], delivery["reason"] or ""))
    assert sum(1 for status, _ in statuses if status == "sent") == CAP
    assert all("frequency cap" in reason for status, reason in statuses if status != "sent")


async def test_a_collapse_key_collapses_across_processes(
    two_orchestrators: tuple[Api, Api],
) -> None:
    first, second = two_orchestrators
    user_id = await first.put_user()
    template = await first.put_template(
        {"channels": {"in_app": {"title": "New message", "body": "You have mail"}}}
    )
    key = unique("thread")

    sent = await asyncio.gather(
        *(
            (first if n % 2 else second).send(
                user_id=user_id, template=template, collapse_key=key, collapse_window_seconds=600
            )
            for n in range(6)
        )
    )

    statuses = []
    for response in sent:
        assert response.status_code == 202, response.text
        (delivery,) = (await first.settled(response.json()["id"]))["deliveries"]
        statuses.append(delivery["status"])
    assert sorted(statuses) == ["collapsed"] * 5 + ["sent"]
