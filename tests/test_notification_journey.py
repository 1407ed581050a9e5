"""One notification, end to end through HTTP: accepted, rendered per locale, delivered, audited."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.support.client import Api, eventually, unique

ORDER_SHIPPED = {
    "category": "transactional",
    "channels": {
        "email": {
            "subject": "Order {{ payload.order_id }} shipped",
            "html": "<p>Hi {{ user.name }}, order {{ payload.order_id }} is on its way.</p>",
        },
        "in_app": {"title": "Order shipped", "body": "Order {{ payload.order_id }} is on its way"},
    },
    "locales": {
        "fr": {
            "email": {"subject": "Commande {{ payload.order_id }} expédiée"},
            "in_app": {
                "title": "Commande expédiée",
                "body": "La commande {{ payload.order_id }} est en route",
            },
        }
    },
}


async def _french_customer(api: Api) -> tuple[str, str]:
    email = f"{unique('amelie')}@example.com"
    user_id = await api.put_user(email=email, locale="fr-CA", name="Élodie")
    return user_id, email


async def test_notification_reaches_inbox_and_email_in_the_users_locale(api: Api) -> None:
    user_id, email = await _french_customer(api)
    template = await api.put_template(ORDER_SHIPPED)

    response = await api.send(user_id=user_id, template=template, payload={"order_id": "A-123"})

    assert response.status_code == 202
    assert response.json()["status"] == "accepted" and response.json()["duplicate"] is False
    notification_id = response.json()["id"]
    found = await api.settled(notification_id)
    assert {d["channel"]: d["status"] for d in found["deliveries"]} == {
        "email": "sent",
        "in_app": "sent",
    }
    inbox = await api.inbox(user_id)
    assert inbox["unread_count"] == 1
    assert inbox["items"][0]["title"] == "Commande expédiée"
    assert inbox["items"][0]["body"] == "La commande A-123 est en route"
    (message,) = await api.sandbox(channel="email", to=email)
    assert message["content"]["subject"] == "Commande A-123 expédiée"
    assert message["headers"]["Subject"] == "Commande A-123 expédiée"
    assert message["headers"]["To"] == email
    assert message["notification_id"] == notification_id


async def test_reading_the_item_marks_the_in_app_delivery_read(api: Api) -> None:
    user_id, _ = await _french_customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    notification_id = (
        await api.send(user_id=user_id, template=template, payload={"order_id": "B-7"})
    ).json()["id"]
    await api.settled(notification_id)
    item = (await api.inbox(user_id))["items"][0]

    read = await api.http.post(f"/v1/users/{user_id}/inbox/{item['id']}/read")

    assert read.status_code == 200 and read.json()["read_at"] is not None
    found = await api.notification(notification_id)
    assert {d["channel"]: d["status"] for d in found["deliveries"]}["in_app"] == "read"
    assert (await api.inbox(user_id))["unread_count"] == 0


async def test_audit_lists_every_step_in_order(api: Api) -> None:
    user_id, _ = await _french_customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    notification_id = (
        await api.send(user_id=user_id, template=template, payload={"order_id": "C-1"})
    ).json()["id"]
    await api.settled(notification_id)

    audit = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()["items"]

    types = [entry["type"] for entry in audit]
    assert types[0] == "notification.accepted"
    for channel in ("email", "in_app"):
        steps = [e["type"] for e in audit if e["channel"] == channel]
        assert steps == [
            "delivery.rendered",
            "delivery.queued",
            "delivery.attempt_started",
            "delivery.sent",
        ]
    assert all(entry["actor"] and entry["at"] for entry in audit)
    assert "@" not in json.dumps(audit), "the audit holds no personal data"


async def test_open_inbox_stream_receives_the_new_item(api: Api, base_url: str) -> None:
    user_id, _ = await _french_customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    token = (await api.http.post(f"/v1/users/{user_id}/inbox-token")).json()["token"]
    received: list[dict[str, object]] = []

    async def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as http,
            http.stream("GET", f"/v1/users/{user_id}/inbox/stream") as stream,
        ):
            event = None
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "inbox_item":
                    received.append(json.loads(line.removeprefix("data: ")))
                    return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    await api.send(user_id=user_id, template=template, payload={"order_id": "D-9"})

    await asyncio.wait_for(listener, 10)
    assert received[0]["title"] == "Commande expédiée"
    assert received[0]["body"] == "La commande D-9 est en route"


async def test_channel_without_contact_point_is_skipped_with_reason(api: Api) -> None:
    user_id = await api.put_user(locale="en")
    template = await api.put_template(ORDER_SHIPPED)

    response = await api.send(user_id=user_id, template=template, payload={"order_id": "E-1"})

    found = await api.settled(response.json()["id"])
    email = next(d for d in found["deliveries"] if d["channel"] == "email")
    assert email["status"] == "skipped"
    assert email["reason"] == "the user has no email address"
    assert await eventually(lambda: _inbox_count(api, user_id)) == 1


async def _inbox_count(api: Api, user_id: str) -> int:
    return len((await api.inbox(user_id))["items"])
