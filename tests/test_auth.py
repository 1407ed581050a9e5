"""Authentication and scopes: API keys, inbox user tokens, and the open operational routes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from frontdesk.core.tokens import sign_token
from tests.support.client import Api, unique

GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello {{ user.id }}"}}}


@pytest.fixture
async def anonymous(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield http


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def _ingest_key(frontdesk: tuple[Any, str]) -> str:
    instance, _ = frontdesk
    _, key = await instance.store.create_api_key(["ingest"])
    return str(key)


async def _inbox_token(api: Api, user_id: str) -> str:
    response = await api.http.post(f"/v1/users/{user_id}/inbox-token")
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


async def test_no_credentials_is_a_401_problem(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1/users/someone")

    _problem(response, 401)


async def test_unknown_api_key_is_a_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/v1/users/someone", headers=_bearer("fd_not_a_key_we_issued"))

    _problem(response, 401)


async def test_ingest_key_can_send_a_notification(
    api: Api, anonymous: httpx.AsyncClient, frontdesk: tuple[Any, str]
) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    key = await _ingest_key(frontdesk)

    response = await anonymous.post(
        "/v1/notifications",
        json={"event_id": unique("evt"), "user_id": user_id, "template": template},
        headers=_bearer(key),
    )

    assert response.status_code == 202, response.text


async def test_ingest_key_cannot_read_users(
    api: Api, anonymous: httpx.AsyncClient, frontdesk: tuple[Any, str]
) -> None:
    user_id = await api.put_user()
    key = await _ingest_key(frontdesk)

    response = await anonymous.get(f"/v1/users/{user_id}", headers=_bearer(key))

    _problem(response, 403)


async def test_user_token_reads_its_own_inbox(api: Api, anonymous: httpx.AsyncClient) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    await api.settled((await api.send(user_id=user_id, template=template)).json()["id"])
    token = await _inbox_token(api, user_id)

    response = await anonymous.get(f"/v1/users/{user_id}/inbox", headers=_bearer(token))

    assert response.status_code == 200, response.text
    assert [item["body"] for item in response.json()["items"]] == [f"Hello {user_id}"]


async def test_user_token_expiry_is_rfc3339_utc_to_the_millisecond(api: Api) -> None:
    user_id = await api.put_user()

    response = await api.http.post(f"/v1/users/{user_id}/inbox-token")

    assert response.status_code == 200, response.text
    expires_at = response.json()["expires_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", expires_at), expires_at


async def test_user_token_cannot_read_another_users_inbox(
    api: Api, anonymous: httpx.AsyncClient
) -> None:
    user_id, other_id = await api.put_user(), await api.put_user()
    token = await _inbox_token(api, user_id)

    response = await anonymous.get(f"/v1/users/{other_id}/inbox", headers=_bearer(token))

    _problem(response, 403)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/users/{user_id}"),
        ("GET", "/v1/users/{user_id}/export"),
        ("POST", "/v1/users/{user_id}/inbox-token"),
        ("GET", "/v1/sandbox/messages"),
        ("GET", "/v1/audit"),
    ],
)
async def test_user_token_cannot_use_admin_routes(
    api: Api, anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    user_id = await api.put_user()
    token = await _inbox_token(api, user_id)

    response = await anonymous.request(method, path.format(user_id=user_id), headers=_bearer(token))

    _problem(response, 403)


async def test_user_token_cannot_send_notifications(api: Api, anonymous: httpx.AsyncClient) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    token = await _inbox_token(api, user_id)

    response = await anonymous.post(
        "/v1/notifications",
        json={"event_id": unique("evt"), "user_id": user_id, "template": template},
        headers=_bearer(token),
    )

    _problem(response, 403)


async def test_expired_user_token_is_a_401(
    api: Api, anonymous: httpx.AsyncClient, frontdesk: tuple[Any, str]
) -> None:
    instance, _ = frontdesk
    user_id = await api.put_user()
    expired = "fdu_" + sign_token(
        instance.token_secret, "inbox", user_id, datetime.now(UTC) - timedelta(minutes=1)
    )

    response = await anonymous.get(f"/v1/users/{user_id}/inbox", headers=_bearer(expired))

    _problem(response, 401)
    assert "expired" in response.json()["detail"]


async def test_tampered_user_token_is_a_401(api: Api, anonymous: httpx.AsyncClient) -> None:
    user_id, other_id = await api.put_user(), await api.put_user()
    signature = (await _inbox_token(api, user_id)).partition(".")[2]
    # The same kind of claims, naming another user, under the genuine token's signature.
    claims = sign_token("any", "inbox", other_id, datetime.now(UTC) + timedelta(hours=1))
    tampered = f"fdu_{claims.partition('.')[0]}.{signature}"

    response = await anonymous.get(f"/v1/users/{other_id}/inbox", headers=_bearer(tampered))

    _problem(response, 401)


async def test_token_signed_with_another_secret_is_a_401(
    api: Api, anonymous: httpx.AsyncClient
) -> None:
    user_id = await api.put_user()
    forged = "fdu_" + sign_token(
        "not-the-server-secret", "inbox", user_id, datetime.now(UTC) + timedelta(hours=1)
    )

    response = await anonymous.get(f"/v1/users/{user_id}/inbox", headers=_bearer(forged))

    _problem(response, 401)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
async def test_operational_route_answers_without_credentials(
    anonymous: httpx.AsyncClient, path: str
) -> None:
    response = await anonymous.get(path)

    assert response.status_code == 200, response.text


async def test_readyz_reports_the_store(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/readyz")

    assert response.json()["status"] == "ready"
    assert response.json()["store"] in ("sqlite", "postgresql")


async def test_openapi_document_lists_the_public_paths(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/openapi.json")

    paths = response.json()["paths"]
    assert {"/v1/notifications", "/v1/users/{user_id}", "/v1/templates/{template_id}"} <= set(paths)


async def test_metrics_count_notifications(api: Api, anonymous: httpx.AsyncClient) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    await api.send(user_id=user_id, template=template)

    response = await anonymous.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'frontdesk_notifications_total{outcome="accepted"}' in response.text
