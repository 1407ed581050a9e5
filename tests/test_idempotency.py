"""Idempotency: one (user, template, event_id) is one notification, however often it is sent."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api, eventually, unique

RECEIPT = {
    "category": "transactional",
    "channels": {
        "email": {"subject": "Receipt {{ payload.order_id }}", "html": "<p>Thanks</p>"},
    },
}


async def _customer(api: Api) -> tuple[str, str]:
    email = f"{unique('idem')}@example.com"
    return await api.put_user(email=email), email


def _receipt(user_id: str, template: str) -> dict[str, Any]:
    """A notification request with a fresh event id."""
    return {
        "event_id": unique("evt"),
        "user_id": user_id,
        "template": template,
        "payload": {"order_id": "A-1"},
    }


async def _marker(api: Api, user_id: str, template: str) -> str:
    """Send one more notification and wait until it is out. The pipeline works in arrival
    order, so a repeat wrongly taken in earlier has had its turn by then: no sleep needed."""
    response = await api.send(user_id=user_id, template=template, payload={"order_id": "marker"})
    await api.settled(response.json()["id"])
    return str(response.json()["id"])


async def _sent_notification_ids(api: Api, email: str) -> list[str]:
    return sorted(message["notification_id"] for message in await api.sandbox(to=email))


async def test_repeat_is_answered_with_the_original_id_and_sends_nothing_more(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(RECEIPT)
    request = _receipt(user_id, template)
    first = await api.send(**request)
    await api.settled(first.json()["id"])

    repeat = await api.send(**request)

    assert first.status_code == 202, first.text
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["id"] == first.json()["id"]
    assert repeat.json()["duplicate"] is True
    marker = await _marker(api, user_id, template)
    assert await _sent_notification_ids(api, email) == sorted([first.json()["id"], marker])


async def test_same_key_with_a_different_payload_is_a_conflict(api: Api) -> None:
    user_id, _ = await _customer(api)
    template = await api.put_template(RECEIPT)
    request = _receipt(user_id, template)
    await api.send(**request)

    response = await api.send(**{**request, "payload": {"order_id": "B-2"}})

    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["payload"]


async def test_same_event_id_for_another_user_is_a_new_notification(api: Api) -> None:
    (first_user, _), (second_user, second_email) = await _customer(api), await _customer(api)
    template = await api.put_template(RECEIPT)
    request = _receipt(first_user, template)
    first = await api.send(**request)

    second = await api.send(**{**request, "user_id": second_user})

    assert second.status_code == 202, second.text
    assert second.json()["duplicate"] is False
    assert second.json()["id"] != first.json()["id"]
    assert await eventually(lambda: api.sandbox(to=second_email))


async def test_duplicates_inside_one_batch_share_the_first_items_id(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(RECEIPT)
    item = _receipt(user_id, template)

    response = await api.http.post("/v1/notifications/batch", json={"notifications": [item, item]})

    assert response.status_code == 200, response.text
    first, repeat = response.json()["results"]
    assert (first["status"], first["duplicate"]) == ("accepted", False)
    assert (repeat["status"], repeat["duplicate"]) == ("accepted", True)
    assert repeat["id"] == first["id"]
    marker = await _marker(api, user_id, template)
    assert await _sent_notification_ids(api, email) == sorted([first["id"], marker])


async def test_conflicting_payloads_inside_one_batch_reject_the_later_item(api: Api) -> None:
    user_id, _ = await _customer(api)
    template = await api.put_template(RECEIPT)
    item = _receipt(user_id, template)

    response = await api.http.post(
        "/v1/notifications/batch",
        json={"notifications": [item, {**item, "payload": {"order_id": "B-2"}}]},
    )

    first, conflicting = response.json()["results"]
    assert first["status"] == "accepted"
    assert conflicting["status"] == "rejected"
    assert conflicting["error"]["status"] == 409
