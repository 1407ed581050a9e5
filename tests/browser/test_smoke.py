"""The browser and the server are up: the shared stylesheet is served."""

from __future__ import annotations

from playwright.async_api import Page

from tests.support.process import ServerProcess


async def test_static_files_are_served(page: Page, server: ServerProcess) -> None:
    response = await page.goto(f"{server.base_url}/static/frontdesk.css")

    assert response is not None and response.status == 200
