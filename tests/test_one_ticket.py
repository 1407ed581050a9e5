"""One ticket per event: strategy "first" sends by one channel only, moving down the list when
a channel cannot be used or fails; escalation sends email only when in-app went unread."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api, eventually, unique
from tests.support.clock import MIDNIGHT_IN_PARIS, ManualClock

FIRST_SMS_THEN_EMAIL = {
    "strategy": "first",
    "channels": {
        "sms": {"text": "Your code is {{ payload.code }}"},
        "email": {"subject": "Your code", "html": "<p>{{ payload.code }}</p>"},
    },
}


async def _deliveries(api: Api, response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 202, response.text
    found = await api.settled(response.json()["id"])
    return {d["channel"]: d for d in found["deliveries"]}


async def test_strategy_first_with_no_phone_sends_by_the_next_channel(api: Api) -> None:
    user_id = await api.put_user(email=f"{unique('nophone')}@example.com")
    template = await api.put_template(FIRST_SMS_THEN_EMAIL)

    deliveries = await _deliveries(
        api, await api.send(user_id=user_id, template=template, payload={"code": "1234"})
    )

    assert deliveries["sms"]["status"] == "skipped"
    assert deliveries["email"]["status"] == "sent"


async def test_strategy_first_stops_at_the_first_channel_sent(api: Api) -> None:
    user_id = await api.put_user(email=f"{unique('both')}@example.com", phone="+14155550111")
    template = await api.put_template(FIRST_SMS_THEN_EMAIL)

    deliveries = await _deliveries(
        api, await api.send(user_id=user_id, template=template, payload={"code": "1234"})
    )

    assert deliveries["sms"]["status"] == "sent"
    assert deliveries["email"]["status"] == "skipped"
    assert deliveries["email"]["reason"] == "strategy first: already sent by sms"


async def test_strategy_first_moves_on_when_a_channel_fails(api: Api) -> None:
    address = f"{unique('fallback')}@example.com"
    user_id = await api.put_user(email=address, phone="+14155550112")
    template = await api.put_template(FIRST_SMS_THEN_EMAIL)
    await api.http.put("/v1/sandbox/faults/sms", json={"error": "permanent", "times": 1})
    try:
        deliveries = await _deliveries(
            api, await api.send(user_id=user_id, template=template, payload={"code": "99"})
        )
    finally:
        await api.http.delete("/v1/sandbox/faults/sms")

    assert deliveries["sms"]["status"] == "failed"
    assert deliveries["email"]["status"] == "sent"
    (email,) = await api.sandbox(channel="email", to=address)
    assert email["content"]["html"] == "<p>99</p>"


async def test_a_request_may_choose_the_strategy(api: Api) -> None:
    user_id = await api.put_user(email=f"{unique('req')}@example.com", phone="+14155550113")
    template = await api.put_template({**FIRST_SMS_THEN_EMAIL, "strategy": "all"})

    deliveries = await _deliveries(
        api,
        await api.send(user_id=user_id, template=template, payload={"code": "1"}, strategy="first"),
    )

    assert [d["status"] for d in deliveries.values()].count("sent") == 1


ESCALATING = {
    "escalation": {"after_seconds": 600},
    "channels": {
        "in_app": {"title": "New invoice", "body": "Invoice {{ payload.n }}"},
        "email": {"subject": "New invoice", "html": "<p>Invoice {{ payload.n }}</p>"},
    },
}


async def _escalating_notification(api: Api) -> tuple[str, str, str]:
    address = f"{unique('esc')}@example.com"
    user_id = await api.put_user(email=address)
    template = await api.put_template(ESCALATING)
    response = await api.send(user_id=user_id, template=template, payload={"n": 7})
    notification_id = response.json()["id"]

    async def in_app_sent_email_waiting() -> bool:
        found = {d["channel"]: d for d in (await api.notification(notification_id))["deliveries"]}
        return (
            found.get("in_app", {}).get("status") == "sent"
            and found.get("email", {}).get("status") == "deferred"
        )

    await eventually(in_app_sent_email_waiting)
    return user_id, address, notification_id


async def test_escalation_sends_email_when_the_in_app_item_stays_unread(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    _, address, notification_id = await _escalating_notification(api)

    clock.advance(seconds=601)

    deliveries = await _deliveries_when_settled(api, notification_id)
    assert deliveries["email"]["status"] == "sent"
    assert len(await api.sandbox(channel="email", to=address)) == 1


async def test_escalation_skips_email_when_the_in_app_item_was_read(
    clocked: tuple[Api, ManualClock],
) -> None:
    api, clock = clocked
    clock.set(MIDNIGHT_IN_PARIS)
    user_id, address, notification_id = await _escalating_notification(api)
    (item,) = (await api.inbox(user_id))["items"]
    await api.http.post(f"/v1/users/{user_id}/inbox/{item['id']}/read")

    clock.advance(seconds=601)

    deliveries = await _deliveries_when_settled(api, notification_id)
    assert deliveries["email"]["status"] == "skipped"
    assert "read in time" in deliveries["email"]["reason"]
    assert await api.sandbox(channel="email", to=address) == []


async def _deliveries_when_settled(api: Api, notification_id: str) -> dict[str, dict[str, Any]]:
    found = await api.settled(notification_id)
    return {d["channel"]: d for d in found["deliveries"]}
