"""Each API key may send so many notifications a second (server.ingest_rate_per_second); over
that, ingest answers 429 with Retry-After and accepts nothing of the request. With Redis, the
processes serving the API count against one allowance per key."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.bootstrap import Frontdesk
from tests.support.client import unique
from tests.support.databases import reachable_redis
from tests.support.instance import configured, running_instance

RATE = 100  # a second, per key
BURST = 1000  # the least there is: a full batch
TEMPLATE = {"channels": {"in_app": {"title": "Order {{ payload.n }}", "body": "Shipped."}}}


class Frontend:
    """One process serving the API."""

    def __init__(self, instance: Frontdesk, base_url: str) -> None:
        self.instance = instance
        self.base_url = base_url

    async def new_key(self, scope: str = "ingest") -> str:
        _, key = await self.instance.store.create_api_key([scope])
        return str(key)

    def client(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@asynccontextmanager
async def serving(
    directory: Path, processes: int, *, shared: bool
) -> AsyncIterator[tuple[list[Frontend], str]]:
    """API processes on one database (sharing Redis, or each counting alone), and a user with
    an in-app template to send to."""
    environment = {
        "FRONTDESK_SERVER__INGEST_RATE_PER_SECOND": str(RATE),
        "FRONTDESK_SERVER__INGEST_BURST": str(BURST),
    }
    if shared:
        environment["FRONTDESK_REDIS_URL"] = await reachable_redis()
        environment["FRONTDESK_REDIS__KEY_PREFIX"] = unique("allowance") + ":"
    async with contextlib.AsyncExitStack() as stack:
        database, _ = await stack.enter_async_context(configured("sqlite", directory))
        frontends = [
            Frontend(
                *await stack.enter_async_context(running_instance(database, None, environment))
            )
            for _ in range(processes)
        ]
        user_id = unique("user")
        async with frontends[0].client(await frontends[0].new_key("admin")) as admin:
            (await admin.put(f"/v1/users/{user_id}", json={"name": "Ada"})).raise_for_status()
            (await admin.put("/v1/templates/shipped", json=TEMPLATE)).raise_for_status()
        yield frontends, user_id


@pytest.fixture(params=["in process", "shared through redis"])
async def frontend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Frontend, str]]:
    async with serving(tmp_path, 1, shared=request.param != "in process") as (frontends, user):
        yield frontends[0], user


def _batch(user_id: str, prefix: str, size: int) -> dict[str, Any]:
    return {
        "notifications": [
            {
                "user_id": user_id,
                "template": "shipped",
                "event_id": f"{prefix}-{n}",
                "payload": {"n": n},
            }
            for n in range(size)
        ]
    }


async def test_a_key_over_its_allowance_is_answered_429_and_nothing_of_the_request_is_accepted(
    frontend: tuple[Frontend, str],
) -> None:
    server, user_id = frontend
    async with server.client(await server.new_key()) as client:
        first = await client.post("/v1/notifications/batch", json=_batch(user_id, "a", BURST))
        assert first.status_code == 200, first.text
        refused_batch = _batch(user_id, "b", BURST)

        refused = await client.post("/v1/notifications/batch", json=refused_batch)

        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= BURST // RATE
        assert "100 notifications a second" in refused.json()["detail"]
        await asyncio.sleep(2 / RATE)  # room for one more
        again = await client.post("/v1/notifications", json=refused_batch["notifications"][0])
        assert again.status_code == 202, "the refused request was not stored: no duplicate"


async def test_each_key_has_an_allowance_of_its_own(
    frontend: tuple[Frontend, str],
) -> None:
    server, user_id = frontend
    async with (
        server.client(await server.new_key()) as spent,
        server.client(await server.new_key()) as fresh,
    ):
        await spent.post("/v1/notifications/batch", json=_batch(user_id, "c", BURST))
        again = await spent.post("/v1/notifications/batch", json=_batch(user_id, "d", BURST))
        assert again.status_code == 429

        response = await fresh.post("/v1/notifications/batch", json=_batch(user_id, "e", BURST))

        assert response.status_code == 200, response.text
        assert {item["status"] for item in response.json()["results"]} == {"accepted"}


async def test_processes_sharing_redis_count_against_one_allowance_per_key(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, 2, shared=True) as ((first, second), user_id):
        key = await first.new_key()
        async with first.client(key) as here, second.client(key) as there:
            spent = await here.post("/v1/notifications/batch", json=_batch(user_id, "f", BURST))
            assert spent.status_code == 200, spent.text

            response = await there.post("/v1/notifications/batch", json=_batch(user_id, "g", BURST))

            assert response.status_code == 429, response.text
