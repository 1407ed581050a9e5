"""One ticket per event: frequency caps and collapse keys hold under concurrent requests."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.client import Api, unique
from tests.support.instance import ADMIN_KEY

NEWS = {
    "category": "marketing",
    "channels": {
        "email": {"subject": "News", "html": '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'}
    },
}


async def _race(base_url: str, bodies: list[dict[str, object]]) -> list[str]:
    """Each request from its own client, all at once."""

    async def post(body: dict[str, object]) -> str:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            response = await client.post("/v1/notifications", json=body)
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

    return await asyncio.gather(*(post(body) for body in bodies))


async def test_a_cap_of_three_a_day_lets_exactly_three_through_a_race(
    api: Api, base_url: str
) -> None:
    user_id = await api.put_user(email=f"{unique('capped')}@example.com")
    template = await api.put_template(NEWS)
    bodies = [
        {"event_id": unique("sale"), "user_id": user_id, "template": template} for _ in range(10)
    ]

    ids = await _race(base_url, bodies)

    emails = [(await api.settled(i))["deliveries"][0] for i in ids]
    assert sum(e["status"] == "sent" for e in emails) == 3
    skipped = [e for e in emails if e["status"] == "skipped"]
    assert len(skipped) == 7
    assert all("frequency cap reached: 3 marketing per 86400s" in e["reason"] for e in skipped)


async def test_critical_priority_is_not_capped(api: Api) -> None:
    user_id = await api.put_user(email=f"{unique('urgent')}@example.com")
    template = await api.put_template(NEWS)
    for _ in range(3):
        await api.settled((await api.send(user_id=user_id, template=template)).json()["id"])

    response = await api.send(user_id=user_id, template=template, priority="critical")

    assert (await api.settled(response.json()["id"]))["deliveries"][0]["status"] == "sent"


async def test_a_collapse_key_lets_exactly_one_through_a_race(api: Api, base_url: str) -> None:
    user_id = await api.put_user(email=f"{unique('typing')}@example.com")
    template = await api.put_template(
        {
            "channels": {"in_app": {"title": "New messages", "body": "You have new messages"}},
            "collapse_window_seconds": 60,
        }
    )
    bodies = [
        {
            "event_id": unique("msg"),
            "user_id": user_id,
            "template": template,
            "collapse_key": "chat-42",
        }
        for _ in range(8)
    ]

    ids = await _race(base_url, bodies)

    deliveries = [(await api.settled(i))["deliveries"][0] for i in ids]
    assert sum(d["status"] == "sent" for d in deliveries) == 1
    collapsed = [d for d in deliveries if d["status"] == "collapsed"]
    assert len(collapsed) == 7
    assert all(d["reason"].startswith("collapsed into ntf_") for d in collapsed)
    assert len((await api.inbox(user_id))["items"]) == 1


async def test_different_collapse_keys_do_not_collapse(api: Api) -> None:
    user_id = await api.put_user()
    template = await api.put_template(
        {"channels": {"in_app": {"title": "t", "body": "b"}}, "collapse_window_seconds": 60}
    )

    first = await api.send(user_id=user_id, template=template, collapse_key="a")
    second = await api.send(user_id=user_id, template=template, collapse_key="b")

    for response in (first, second):
        delivery = (await api.settled(response.json()["id"]))["deliveries"][0]
        assert delivery["status"] == "sent"
