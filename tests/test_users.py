"""Users (recipients): validation, storage, GDPR erasure and export."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Api, unique

WELCOME = {
    "category": "transactional",
    "channels": {
        "email": {"subject": "Welcome {{ user.name }}", "html": "<p>Hello</p>"},
        "in_app": {"title": "Welcome", "body": "Hello {{ user.name }}"},
    },
}


async def _welcomed(api: Api) -> tuple[str, str]:
    """A user who has received one notification; (user id, notification id)."""
    user_id = await api.put_user(email=f"{unique('ada')}@example.com", name="Ada")
    template = await api.put_template(WELCOME)
    response = await api.send(user_id=user_id, template=template)
    assert response.status_code == 202, response.text
    notification_id = response.json()["id"]
    await api.settled(notification_id)
    return user_id, notification_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "ada-at-example.com"),
        ("phone", "0155550100"),
        ("phone", "+1 415 555 0100"),
        ("locale", "xx-NOPE"),
        ("timezone", "Mars/Olympus_Mons"),
    ],
)
async def test_invalid_contact_field_is_refused_naming_it(api: Api, field: str, value: str) -> None:
    user_id = unique("user")

    response = await api.http.put(f"/v1/users/{user_id}", json={field: value})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await api.http.get(f"/v1/users/{user_id}")).status_code == 404


async def test_put_then_get_returns_the_stored_fields(api: Api) -> None:
    user_id = unique("user")
    profile: dict[str, Any] = {
        "email": "ada@example.com",
        "phone": "+14155550100",
        "locale": "fr-CA",
        "timezone": "Europe/Paris",
        "name": "Ada",
        "properties": {"plan": "pro"},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "consent": {"sms_marketing": True},
    }

    put = await api.http.put(f"/v1/users/{user_id}", json=profile)
    got = await api.http.get(f"/v1/users/{user_id}")

    assert put.status_code == 200 and got.status_code == 200
    assert got.json() == put.json()
    assert got.json()["id"] == user_id
    assert {key: got.json()[key] for key in profile} == profile


async def test_put_replaces_the_whole_user(api: Api) -> None:
    user_id = await api.put_user(email="ada@example.com", name="Ada")

    await api.put_user(user_id, name="Ada L.")

    user = (await api.http.get(f"/v1/users/{user_id}")).json()
    assert user["name"] == "Ada L." and user["email"] is None


async def test_deleted_user_is_gone(api: Api) -> None:
    user_id, _ = await _welcomed(api)

    response = await api.http.delete(f"/v1/users/{user_id}")

    assert response.status_code == 204
    assert (await api.http.get(f"/v1/users/{user_id}")).status_code == 404


async def test_deleted_user_has_an_empty_inbox(api: Api) -> None:
    user_id, _ = await _welcomed(api)
    assert (await api.inbox(user_id))["items"]

    await api.http.delete(f"/v1/users/{user_id}")

    inbox = await api.inbox(user_id)
    assert inbox["items"] == [] and inbox["unread_count"] == 0


async def test_deleted_users_audit_stays_without_their_id(api: Api) -> None:
    user_id, notification_id = await _welcomed(api)
    before = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()["items"]
    assert all(entry["user_id"] == user_id for entry in before)

    await api.http.delete(f"/v1/users/{user_id}")

    after = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()["items"]
    assert [e["id"] for e in after] == [e["id"] for e in before]
    assert all(entry["user_id"] != user_id for entry in after)
    assert user_id not in (await api.http.get(f"/v1/notifications/{notification_id}")).text
    searched = await api.http.get("/v1/audit", params={"user_id": user_id})
    assert searched.json()["items"] == []


async def test_deleting_an_unknown_user_is_a_404(api: Api) -> None:
    response = await api.http.delete(f"/v1/users/{unique('ghost')}")

    assert response.status_code == 404


async def test_export_returns_the_user_their_inbox_and_their_audit(api: Api) -> None:
    user_id, notification_id = await _welcomed(api)

    response = await api.http.get(f"/v1/users/{user_id}/export")

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["user"]["id"] == user_id and export["user"]["name"] == "Ada"
    (item,) = export["inbox"]
    assert item["notification_id"] == notification_id and item["body"] == "Hello Ada"
    assert export["audit"]
    assert {entry["notification_id"] for entry in export["audit"]} == {notification_id}
    assert export["audit"][0]["type"] == "notification.accepted"
