"""The inbox component dropped into another site's page: with that site's origin allowed
(server.cors_origins), it works there as on frontdesk's own pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser.support import screenshot
from tests.support.client import Api
from tests.support.databases import sqlite_url
from tests.support.instance import ADMIN_KEY
from tests.support.process import ServerProcess
from tests.support.serving import free_port, serving

RECEIPT = {"channels": {"in_app": {"title": "Receipt {{ payload.n }}", "body": "Paid"}}}


def _customer_site(frontdesk_url: str) -> Starlette:
    """A shop's page that embeds the component, served from an origin of its own."""

    async def page(request: Request) -> HTMLResponse:
        user_id, token = request.query_params["user_id"], request.query_params["token"]
        return HTMLResponse(
            f"""<!doctype html><html lang="en"><head><title>Shop</title>
            <script src="{frontdesk_url}/static/inbox.js" defer></script></head>
            <body><header><h1>Shop</h1>
            <frontdesk-inbox api-base="{frontdesk_url}" user-id="{user_id}"
                             user-token="{token}"></frontdesk-inbox>
            </header></body></html>"""
        )

    return Starlette(routes=[Route("/", page)])


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[Api, str]]:
    site_port = free_port()
    site_origin = f"http://127.0.0.1:{site_port}"
    server = ServerProcess(
        sqlite_url(tmp_path),
        {"FRONTDESK_SERVER__CORS_ORIGINS": f'["{site_origin}"]'},
        log_path=tmp_path / "frontdesk.log",
    )
    await asyncio.to_thread(server.start)
    try:
        async with (
            serving(_customer_site(server.base_url), port=site_port),
            httpx.AsyncClient(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=30,
            ) as http,
        ):
            yield Api(http), site_origin
    finally:
        await asyncio.to_thread(server.stop)


async def test_the_inbox_works_on_another_sites_page(page: Page, shop: tuple[Api, str]) -> None:
    api, site = shop
    user_id = await api.put_user(locale="en-GB")
    template = await api.put_template(RECEIPT)
    token = (await api.http.post(f"/v1/users/{user_id}/inbox-token")).json()["token"]
    await page.goto(f"{site}/?user_id={user_id}&token={token}")
    await expect(page.locator("frontdesk-inbox")).to_have_attribute("connection", "open")

    await api.send(user_id=user_id, template=template, payload={"n": 7})

    await expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(
        timeout=2000
    )
    await screenshot(page, "inbox-embedded-on-another-site")
    assert (await api.inbox(user_id))["unread_count"] == 1
