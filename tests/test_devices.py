"""Devices for push: each token with the provider it belongs to, one user per token, and a
device that is given a new token replaces its old one."""

from __future__ import annotations

from typing import Any

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
