"""Devices for push: each token with the provider it belongs to, one user per token, and a
device that is given a new token replaces its old one."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.support.client import Api, unique


async def _devices(api: Api, user_id: str) -> list[dict[str, Any]]:
    response = await api.http.get(f"/v1/users/{user_id}")
    assert response.status_code == 200, response.text
    devices: list[dict[str, Any]] = response.json()["devices"]
    return devices


async def _register(api: Api, user_id: str, **device: str) -> None:
    response = await api.http.post(f"/v1/users/{user_id}/devices", json=device)
    assert response.status_code == 201, response.text


async def test_a_device_given_a_new_token_replaces_its_old_one(api: Api) -> None:
    user_id = await api.put_user()
    old, new, other = unique("fcm-old"), unique("fcm-new"), unique("apns")
    await _register(api, user_id, token=old, provider="fcm")
    await _register(api, user_id, token=other, provider="apns")

    await _register(api, user_id, token=new, provider="fcm", replaces=old)

    devices = await _devices(api, user_id)
    assert sorted((d["token"], d["provider"]) for d in devices) == sorted(
        [(new, "fcm"), (other, "apns")]
    )


async def test_a_token_registered_by_another_user_moves_to_them(api: Api) -> None:
    seller, buyer = await api.put_user(), await api.put_user()
    token = unique("fcm")
    await _register(api, seller, token=token, provider="fcm")

    await _register(api, buyer, token=token, provider="fcm")

    assert await _devices(api, seller) == []
    assert [d["token"] for d in await _devices(api, buyer)] == [token]


async def test_a_device_of_an_unknown_kind_is_refused_naming_the_field(api: Api) -> None:
    user_id = await api.put_user()

    response = await api.http.post(
        f"/v1/users/{user_id}/devices", json={"token": unique("t"), "provider": "blackberry"}
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["provider"]
    assert await _devices(api, user_id) == []


def _webpush_token() -> str:
    """A browser's PushSubscription JSON: its endpoint URL puts slashes in the token."""
    return json.dumps(
        {
            "endpoint": f"https://push.example/wpush/v2/{unique('sub')}",
            "keys": {
                "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA",
                "auth": "tBHItJI5svbpez7KI4CCXg",
            },
        }
    )


async def test_a_webpush_device_is_removed_by_its_url_encoded_token(api: Api) -> None:
    user_id = await api.put_user()
    webpush, fcm = _webpush_token(), unique("fcm")
    await _register(api, user_id, token=webpush, provider="webpush")
    await _register(api, user_id, token=fcm, provider="fcm")

    response = await api.http.delete(f"/v1/users/{user_id}/devices/{quote(webpush, safe='')}")

    assert response.status_code == 204, response.text
    assert [d["token"] for d in await _devices(api, user_id)] == [fcm]


async def test_removing_a_device_the_user_does_not_have_is_a_404_problem(api: Api) -> None:
    user_id = await api.put_user()
    await _register(api, user_id, token=_webpush_token(), provider="webpush")

    response = await api.http.delete(
        f"/v1/users/{user_id}/devices/{quote(_webpush_token(), safe='')}"
    )

    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "no such device" in response.json()["detail"]
    assert len(await _devices(api, user_id)) == 1
