"""A thin client for the public HTTP API, with helpers to wait for eventual outcomes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def put_user(self, user_id: str | None = None, **fields: Any) -> str:
        user_id = user_id or unique("user")
        response = await self.http.put(f"/v1/users/{user_id}", json=fields)
        assert response.status_code == 200, response.text
        return user_id

    async def put_template(self, body: dict[str, Any], template_id: str | None = None) -> str:
        template_id = template_id or unique("tpl")
        response = await self.http.put(f"/v1/templates/{template_id}", json=body)
        assert response.status_code == 201, response.text
        return template_id

    async def send(self, **body: Any) -> httpx.Response:
        body.setdefault("event_id", unique("evt"))
        return await self.http.post("/v1/notifications", json=body)

    async def notification(self, notification_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/notifications/{notification_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def settled(self, notification_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The notification once none of its deliveries is still pending."""

        async def check() -> dict[str, Any] | None:
            found = await self.notification(notification_id)
            pending = {"queued", "deferred", "sending"}
            done = found["deliveries"] and not any(
                d["status"] in pending for d in found["deliveries"]
            )
            return found if done else None

        return await eventually(check, timeout)

    async def sandbox(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.http.get("/v1/sandbox/messages", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def inbox(self, user_id: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(f"/v1/users/{user_id}/inbox", params=params)
        assert response.status_code == 200, response.text
        return response.json()


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Poll until ``check`` returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
