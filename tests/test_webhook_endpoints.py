"""A user's webhook endpoints: registered, listed, changed, rotated and removed through the API;
signing secrets shown once and kept encrypted at rest."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from frontdesk.store import tables
from tests.support.client import Api, unique


async def _register(api: Api, user_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("url", "https://hooks.example.com/frontdesk")
    response = await api.http.post(f"/v1/users/{user_id}/webhook-endpoints", json=body)
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def test_a_registered_endpoint_gets_a_secret_shown_once(api: Api) -> None:
    user_id = await api.put_user()

    endpoint = await _register(
        api,
        user_id,
        event_types=["order.shipped"],
        description="orders",
        headers={"X-Api-Key": "k-123"},
    )

    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["enabled"] is True and endpoint["event_types"] == ["order.shipped"]
    listed = (await api.http.get(f"/v1/users/{user_id}/webhook-endpoints")).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert listed[0]["headers"] == ["X-Api-Key"]  # names only: values are often credentials


async def test_an_asymmetric_endpoint_is_shown_only_its_public_key(api: Api) -> None:
    user_id = await api.put_user()

    endpoint = await _register(api, user_id, signature="v1a")

    assert endpoint["signature"] == "v1a"
    assert endpoint["public_key"].startswith("whpk_")
    assert "secret" not in endpoint


async def test_secrets_are_encrypted_at_rest(api: Api, frontdesk: tuple[Any, str]) -> None:
    instance, _ = frontdesk
    user_id = await api.put_user()

    endpoint = await _register(api, user_id)

    async with instance.store._engines.reader.connect() as connection:
        stored = await connection.scalar(
            select(tables.webhook_endpoints.c.secrets).where(
                tables.webhook_endpoints.c.id == endpoint["id"]
            )
        )
    raw_secret = endpoint["secret"].removeprefix("whsec_")
    assert raw_secret not in str(stored) and endpoint["secret"] not in str(stored)


async def test_an_endpoint_is_disabled_reenabled_and_refiltered(api: Api) -> None:
    user_id = await api.put_user()
    endpoint = await _register(api, user_id)
    path = f"/v1/users/{user_id}/webhook-endpoints/{endpoint['id']}"

    disabled = (await api.http.patch(path, json={"enabled": False})).json()
    enabled = (await api.http.patch(path, json={"enabled": True, "event_types": ["a", "b"]})).json()

    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled through the API")
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    assert enabled["event_types"] == ["a", "b"]


async def test_rotation_gives_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    api: Api,
) -> None:
    user_id = await api.put_user()
    endpoint = await _register(api, user_id)

    response = await api.http.post(
        f"/v1/users/{user_id}/webhook-endpoints/{endpoint['id']}/rotate-secret"
    )

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secrets_valid_until"]


async def test_a_removed_endpoint_is_gone(api: Api) -> None:
    user_id = await api.put_user()
    endpoint = await _register(api, user_id)
    path = f"/v1/users/{user_id}/webhook-endpoints/{endpoint['id']}"

    removed = await api.http.delete(path)

    assert removed.status_code == 204
    assert (await api.http.get(path)).status_code == 404
    assert (await api.http.delete(path)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url"),
        ({"url": "https://hooks.example.com/x", "headers": {"webhook-id": "x"}}, "headers"),
        ({"url": "https://hooks.example.com/x", "headers": {"X-Bad": "a\nb"}}, "headers"),
        ({"url": "https://hooks.example.com/x", "secret": "whsec_c2hvcnQ="}, "secret"),
        ({"url": "https://hooks.example.com/x", "client_certificate": "not pem"}, "client_key"),
        ({"url": "https://hooks.example.com/x", "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": "https://hooks.example.com/x", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    api: Api, body: dict[str, Any], field: str
) -> None:
    user_id = await api.put_user()

    response = await api.http.post(f"/v1/users/{user_id}/webhook-endpoints", json=body)

    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    listed = await api.http.get(f"/v1/users/{user_id}/webhook-endpoints")
    assert listed.json()["items"] == []


async def test_an_unknown_user_has_no_endpoints(api: Api) -> None:
    response = await api.http.post(
        f"/v1/users/{unique('nobody')}/webhook-endpoints", json={"url": "https://h.example.com"}
    )

    assert response.status_code == 404
