"""Accepted means finished: a server killed with SIGKILL mid-delivery loses nothing and, once
restarted on the same database, delivers every accepted notification exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.client import Api, eventually, unique
from tests.support.instance import CONFIGURATIONS, configured
from tests.support.process import ServerProcess

BATCH = 1000
# Few in-app sends at a time make delivery slow enough to be caught in the middle, and a
# short lease brings back what the killed process held soon after the restart.
SLOW_IN_APP = {
    "FRONTDESK_CHANNELS__IN_APP__CONCURRENCY": "4",
    "FRONTDESK_CHANNELS__IN_APP__LEASE_SECONDS": "2",
    "FRONTDESK_PIPELINE__EVENT_LEASE_SECONDS": "2",
}


@pytest.fixture(params=CONFIGURATIONS)
async def own_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    async with configured(request.param, tmp_path) as configuration:
        yield configuration


async def _all_inbox_items(api: Api, user_id: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await api.inbox(user_id, **params)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_killed_server_delivers_every_accepted_notification_exactly_once(
    own_database: tuple[str, dict[str, str]],
) -> None:
    database_url, environment = own_database
    server = ServerProcess(database_url, {**environment, **SLOW_IN_APP})
    server.start()
    try:
        async with server.client() as http:
            api = Api(http)
            user_id = await api.put_user()
            template = await api.put_template(
                {
                    "channels": {
                        "in_app": {"title": "Item {{ payload.n }}", "body": "Body {{ payload.n }}"}
                    }
                }
            )
            batch = [
                {
                    "event_id": unique("crash"),
                    "user_id": user_id,
                    "template": template,
                    "payload": {"n": n},
                }
                for n in range(BATCH)
            ]
            response = await http.post("/v1/notifications/batch", json={"notifications": batch})
            assert response.status_code == 200
            accepted = {r["id"] for r in response.json()["results"] if r["status"] == "accepted"}
            assert len(accepted) == BATCH

            async def some_delivered() -> int:
                return (await api.inbox(user_id, status="unread", limit=1))["unread_count"]

            delivered_before_kill = await eventually(some_delivered, timeout=30, interval=0.01)
        server.kill()
        assert 0 < delivered_before_kill < BATCH, "the kill must land in the middle of delivery"

        server.start()
        async with server.client() as http:
            api = Api(http)

            async def all_delivered() -> bool:
                return (await api.inbox(user_id, limit=1))["unread_count"] >= BATCH

            await eventually(all_delivered, timeout=60, interval=0.2)
            await asyncio.sleep(0.5)  # anything extra would show up now
            items = await _all_inbox_items(api, user_id)
    finally:
        server.stop()

    notification_ids = [item["notification_id"] for item in items]
    assert len(items) == BATCH
    assert set(notification_ids) == accepted, "every accepted notification, exactly once"
