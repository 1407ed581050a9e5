"""Topics: one request fans out to every subscriber, each through the same rules, deduped per
subscriber; transactional work is never queued behind a marketing broadcast."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.client import Api, eventually, unique

ANNOUNCEMENT = {
    "category": "marketing",
    "channels": {"in_app": {"title": "New season", "body": "Hello {{ user.name }}"}},
}


async def _audience(api: Api, size: int) -> tuple[str, list[str]]:
    topic = unique("topic")
    users = [await api.put_user(name=f"Reader {n}") for n in range(size)]
    response = await api.http.put(f"/v1/topics/{topic}/subscribers", json={"user_ids": users})
    assert response.status_code == 200, response.text
    assert response.json()["subscribers"] == size
    return topic, users


async def _broadcast_done(api: Api, broadcast_id: str) -> dict[str, Any]:
    async def completed() -> dict[str, Any] | None:
        found = (await api.http.get(f"/v1/broadcasts/{broadcast_id}")).json()
        return found if found["status"] == "completed" else None

    return await eventually(completed, timeout=30)


async def test_a_notification_to_a_topic_reaches_every_subscriber_once(api: Api) -> None:
    topic, users = await _audience(api, 40)
    template = await api.put_template(ANNOUNCEMENT)

    response = await api.send(topic=topic, template=template)

    assert response.status_code == 202
    broadcast = await _broadcast_done(api, response.json()["id"])
    assert broadcast["notifications"] == 40

    async def everyone_has_it() -> bool:
        counts = [len((await api.inbox(u))["items"]) for u in users]
        return counts == [1] * len(users)

    await eventually(everyone_has_it, timeout=30)
    (item,) = (await api.inbox(users[7]))["items"]
    assert item["body"] == "Hello Reader 7"


async def test_a_repeated_broadcast_is_a_duplicate_and_sends_nothing_more(api: Api) -> None:
    topic, users = await _audience(api, 5)
    template = await api.put_template(ANNOUNCEMENT)
    event_id = unique("season")
    first = await api.send(topic=topic, template=template, event_id=event_id)
    await _broadcast_done(api, first.json()["id"])

    repeat = await api.send(topic=topic, template=template, event_id=event_id)

    assert repeat.status_code == 200
    assert repeat.json() == {"id": first.json()["id"], "status": "accepted", "duplicate": True}
    await asyncio.sleep(0.3)
    assert [len((await api.inbox(u))["items"]) for u in users] == [1] * 5


async def test_each_subscriber_goes_through_their_own_rules(api: Api) -> None:
    topic, users = await _audience(api, 3)
    await api.http.put(
        f"/v1/users/{users[1]}/preferences", json={"categories": {"marketing": {"in_app": False}}}
    )
    template = await api.put_template(ANNOUNCEMENT)

    response = await api.send(topic=topic, template=template)

    await _broadcast_done(api, response.json()["id"])

    async def settled_inboxes() -> list[int] | None:
        counts = [len((await api.inbox(u))["items"]) for u in users]
        return counts if counts[0] == 1 and counts[2] == 1 else None

    assert await eventually(settled_inboxes) == [1, 0, 1]


async def test_subscribing_an_unknown_user_is_refused(api: Api) -> None:
    response = await api.http.put(
        f"/v1/topics/{unique('topic')}/subscribers", json={"user_ids": [unique("ghost")]}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "user_ids"


async def test_transactional_work_is_not_queued_behind_a_broadcast(api: Api) -> None:
    topic, _ = await _audience(api, 300)
    announcement = await api.put_template(ANNOUNCEMENT)
    receipt = await api.put_template({"channels": {"in_app": {"title": "Receipt", "body": "Paid"}}})
    buyer = await api.put_user()
    await api.send(topic=topic, template=announcement)

    started = time.monotonic()
    response = await api.send(user_id=buyer, template=receipt)
    found = await api.settled(response.json()["id"], timeout=5)

    assert found["deliveries"][0]["status"] == "sent"
    assert time.monotonic() - started < 1.0
