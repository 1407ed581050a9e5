"""A request body over server.max_body_bytes is refused with 413, whether it declares its length
or arrives in chunks without one, and nothing of it is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import Api, unique
from tests.support.instance import instance_of_its_own

LIMIT = 2048
GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello {{ user.id }}"}}}


@pytest.fixture(scope="module")
async def small_limit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """An instance whose bodies may hold LIMIT bytes. The limit is the HTTP layer's, met before
    any store is reached: one store shows it."""
    directory: Path = tmp_path_factory.mktemp("body-limit")
    environment = {"FRONTDESK_SERVER__MAX_BODY_BYTES": str(LIMIT)}
    async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
        yield api


def _notification(user_id: str, template: str, padding: int) -> bytes:
    body = {
        "event_id": unique("evt"),
        "user_id": user_id,
        "template": template,
        "payload": {"padding": "x" * padding},
    }
    return json.dumps(body).encode()


async def _in_chunks(body: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _audit(api: Api, user_id: str) -> list[dict[str, Any]]:
    response = await api.http.get("/v1/audit", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_chunked_body_over_the_limit_is_a_413_problem_and_nothing_is_stored(
    small_limit: Api,
) -> None:
    api = small_limit
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    body = _notification(user_id, template, padding=3 * LIMIT)

    response = await api.http.post(
        "/v1/notifications",
        content=_in_chunks(body),
        headers={"Content-Type": "application/json"},
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"limit of {LIMIT} bytes" in response.json()["detail"]
    assert await _audit(api, user_id) == []


async def test_declared_length_over_the_limit_is_a_413_problem(small_limit: Api) -> None:
    api = small_limit
    user_id = await api.put_user()
    template = await api.put_template(GREETING)

    response = await api.http.post(
        "/v1/notifications",
        content=_notification(user_id, template, padding=3 * LIMIT),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413, response.text
    assert f"limit of {LIMIT} bytes" in response.json()["detail"]
    assert await _audit(api, user_id) == []


async def test_chunked_body_within_the_limit_is_accepted(small_limit: Api) -> None:
    api = small_limit
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    body = _notification(user_id, template, padding=LIMIT // 2)

    response = await api.http.post(
        "/v1/notifications",
        content=_in_chunks(body),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 202, response.text
