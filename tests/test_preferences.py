"""Who gets what: preferences (most specific wins), consent, suppression and priority, each
decided by the orchestrator and written on the delivery with the rule that decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.client import Api, eventually, unique


def _template(category: str = "transactional", **channels: dict[str, str]) -> dict[str, Any]:
    return {"category": category, "channels": channels}


EMAIL = {"subject": "Hello", "html": "<p>Hello</p>"}
NEWS = {"subject": "News", "html": '<p>News</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'}
IN_APP = {"title": "Hello", "body": "Hello"}
SMS = {"text": "Hello"}


async def _statuses(api: Api, response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 202, response.text
    found = await api.settled(response.json()["id"])
    return {d["channel"]: d for d in found["deliveries"]}


async def _user(api: Api, **fields: Any) -> str:
    fields.setdefault("email", f"{unique('pref')}@example.com")
    return await api.put_user(**fields)


async def test_an_opted_out_channel_is_skipped_with_the_rule_named(api: Api) -> None:
    user_id = await _user(api)
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"email": False}})
    template = await api.put_template(_template(email=EMAIL, in_app=IN_APP))

    deliveries = await _statuses(api, await api.send(user_id=user_id, template=template))

    assert deliveries["email"]["status"] == "skipped"
    assert "channels.email" in deliveries["email"]["reason"]
    assert deliveries["in_app"]["status"] == "sent"


async def test_the_most_specific_preference_wins(api: Api) -> None:
    user_id = await _user(api)
    template = await api.put_template(_template(email=EMAIL))
    await api.http.put(
        f"/v1/users/{user_id}/preferences",
        json={"channels": {"email": False}, "templates": {template: {"email": True}}},
    )

    deliveries = await _statuses(api, await api.send(user_id=user_id, template=template))

    assert deliveries["email"]["status"] == "sent"


async def test_a_category_preference_applies_to_its_templates(api: Api) -> None:
    user_id = await _user(api)
    await api.http.put(
        f"/v1/users/{user_id}/preferences", json={"categories": {"marketing": {"email": False}}}
    )
    template = await api.put_template(_template("marketing", email=NEWS))

    deliveries = await _statuses(api, await api.send(user_id=user_id, template=template))

    assert deliveries["email"]["status"] == "skipped"
    assert "categories.marketing.email" in deliveries["email"]["reason"]


async def test_marketing_sms_without_consent_is_skipped(api: Api) -> None:
    user_id = await _user(api, phone="+14155550101")
    template = await api.put_template(_template("marketing", sms=SMS))

    deliveries = await _statuses(api, await api.send(user_id=user_id, template=template))

    assert deliveries["sms"]["status"] == "skipped"
    assert "consent" in deliveries["sms"]["reason"]


async def test_marketing_sms_with_recorded_consent_is_sent(api: Api) -> None:
    user_id = await _user(api, phone="+14155550102", consent={"sms_marketing": True})
    template = await api.put_template(_template("marketing", sms=SMS))

    deliveries = await _statuses(api, await api.send(user_id=user_id, template=template))

    assert deliveries["sms"]["status"] == "sent"


async def test_critical_priority_goes_through_an_opt_out(api: Api) -> None:
    user_id = await _user(api)
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"email": False}})
    template = await api.put_template(_template(email=EMAIL))

    response = await api.send(user_id=user_id, template=template, priority="critical")

    assert (await _statuses(api, response))["email"]["status"] == "sent"


async def test_a_suppressed_address_is_suppressed_even_for_critical(api: Api) -> None:
    address = f"{unique('bounced')}@example.com"
    user_id = await _user(api, email=address)
    put = await api.http.put(f"/v1/suppressions/email/{address}", json={"reason": "hard bounce"})
    assert put.status_code == 200
    template = await api.put_template(_template(email=EMAIL))

    response = await api.send(user_id=user_id, template=template, priority="critical")

    email = (await _statuses(api, response))["email"]
    assert email["status"] == "suppressed"
    assert "suppression list" in email["reason"]
    assert await api.sandbox(channel="email", to=address) == []


async def test_a_suppression_added_after_queueing_stops_the_send(api: Api) -> None:
    address = f"{unique('late')}@example.com"
    user_id = await _user(api, email=address)
    template = await api.put_template(_template(email=EMAIL))
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    response = await api.send(user_id=user_id, template=template, send_at=soon)

    async def deferred() -> bool:
        found = await api.notification(response.json()["id"])
        return bool(found["deliveries"]) and found["deliveries"][0]["status"] == "deferred"

    await eventually(deferred)
    await api.http.put(f"/v1/suppressions/email/{address}")

    email = (await _statuses(api, response))["email"]
    assert email["status"] == "suppressed"
    assert "checked again before sending" in email["reason"]
    assert await api.sandbox(channel="email", to=address) == []


async def test_a_user_token_changes_its_own_preferences_as_the_user(api: Api) -> None:
    user_id = await _user(api)
    token = (await api.http.post(f"/v1/users/{user_id}/inbox-token")).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    saved = await api.http.put(
        f"/v1/users/{user_id}/preferences", json={"channels": {"sms": False}}, headers=headers
    )

    assert saved.status_code == 200
    assert saved.json()["channels"] == {"sms": False}
    audit = (await api.http.get("/v1/audit", params={"user_id": user_id})).json()["items"]
    change = [e for e in audit if e["type"] == "user.preferences_changed"]
    assert change and change[-1]["actor"] == "user"


async def test_a_user_token_cannot_touch_another_users_preferences(api: Api) -> None:
    mine, theirs = await _user(api), await _user(api)
    token = (await api.http.post(f"/v1/users/{mine}/inbox-token")).json()["token"]

    response = await api.http.get(
        f"/v1/users/{theirs}/preferences", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403


async def test_preferences_with_an_unknown_channel_are_refused(api: Api) -> None:
    user_id = await _user(api)

    response = await api.http.put(
        f"/v1/users/{user_id}/preferences", json={"channels": {"fax": False}}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("channels")


async def test_suppressions_are_listed_and_removed(api: Api) -> None:
    address = f"{unique('list')}@example.com"
    await api.http.put(f"/v1/suppressions/email/{address}", json={"reason": "complaint"})

    listed = (await api.http.get("/v1/suppressions", params={"channel": "email"})).json()
    removed = await api.http.delete(f"/v1/suppressions/email/{address}")
    again = await api.http.delete(f"/v1/suppressions/email/{address}")

    assert {"channel": "email", "address": address, "reason": "complaint"}.items() <= next(
        item for item in listed["items"] if item["address"] == address
    ).items()
    assert removed.status_code == 204
    assert again.status_code == 404


async def test_an_in_app_address_cannot_be_suppressed(api: Api) -> None:
    response = await api.http.put("/v1/suppressions/in_app/someone")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "channel"


async def test_a_marketing_text_ends_with_the_opt_out_instruction(api: Api) -> None:
    phone = "+14155550123"
    user_id = await _user(api, phone=phone, consent={"sms_marketing": True})
    template = await api.put_template(_template("marketing", sms={"text": "Sale today!"}))

    await _statuses(api, await api.send(user_id=user_id, template=template))

    texts = [m["content"]["text"] for m in await api.sandbox(channel="sms", to=phone)]
    assert "Sale today! Reply STOP to opt out." in texts
