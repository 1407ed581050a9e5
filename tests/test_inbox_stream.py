"""The inbox's Server-Sent Events stream: every event carries the stream's position, and a
client that reconnects with it (Last-Event-ID) receives what was sent while it was away."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.support.client import Api

ANNOUNCEMENT = {
    "category": "transactional",
    "channels": {"in_app": {"title": "Release {{ payload.version }}", "body": "It is out"}},
}


async def _first_events(
    base_url: str, token: str, user_id: str, count: int, **headers: str
) -> list[dict[str, Any]]:
    """The stream's first ``count`` events, each as its fields (``data`` decoded)."""
    events: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream(
            "GET",
            f"/v1/users/{user_id}/inbox/stream",
            headers={"Authorization": f"Bearer {token}", **headers},
        ) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value
                continue
            events.append(fields)
            fields = {}
            if len(events) == count:
                return events
    raise AssertionError(f"the stream ended after {len(events)} events")


async def _user_with_token(api: Api) -> tuple[str, str]:
    user_id = await api.put_user(locale="en")
    response = await api.http.post(f"/v1/users/{user_id}/inbox-token")
    return user_id, response.json()["token"]


async def test_every_event_carries_the_newest_item_id_as_its_id(api: Api, base_url: str) -> None:
    user_id, token = await _user_with_token(api)
    template = await api.put_template(ANNOUNCEMENT)
    listening = asyncio.create_task(_first_events(base_url, token, user_id, count=3))
    await asyncio.sleep(0.3)

    await api.send(user_id=user_id, template=template, payload={"version": "1.0"})

    opening, item, count = await asyncio.wait_for(listening, 10)
    assert (item["event"], count["event"]) == ("inbox_item", "unread_count")
    assert opening["id"] < item["data"]["id"]
    assert item["id"] == count["id"] == item["data"]["id"]


async def test_reconnect_with_last_event_id_receives_the_item_sent_while_away(
    api: Api, base_url: str
) -> None:
    user_id, token = await _user_with_token(api)
    template = await api.put_template(ANNOUNCEMENT)
    (opening,) = await _first_events(base_url, token, user_id, count=1)
    sent = await api.send(user_id=user_id, template=template, payload={"version": "2.0"})
    await api.settled(sent.json()["id"])

    _, missed = await _first_events(
        base_url, token, user_id, count=2, **{"Last-Event-ID": opening["id"]}
    )

    assert missed["event"] == "inbox_item"
    assert missed["data"]["title"] == "Release 2.0"


async def test_last_event_id_that_is_not_a_position_starts_from_now(
    api: Api, base_url: str
) -> None:
    user_id, token = await _user_with_token(api)

    (opening,) = await _first_events(base_url, token, user_id, count=1, **{"Last-Event-ID": "zzz"})

    assert opening["event"] == "unread_count"
    assert opening["id"].startswith("inb_")
