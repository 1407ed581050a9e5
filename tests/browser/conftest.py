"""A real ``frontdesk serve`` and a real Chromium for the browser tests."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.client import Api
from tests.support.databases import in_ci, sqlite_url
from tests.support.process import ServerProcess

# What this machine's closed network and a root user need (see the environment notes).
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "Chromium is not installed (scripts/test installs Debian's chromium package)"
        if in_ci():
            pytest.fail(message + " (CI=true: a missing browser is a failure)")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGUMENTS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """``frontdesk serve`` as a process of its own, on SQLite."""
    directory = tmp_path_factory.mktemp("pages")
    running = ServerProcess(sqlite_url(directory), log_path=directory / "frontdesk.log")
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    """The admin API of that server, to arrange what the pages then show."""
    async with server.client() as http:
        yield Api(http)
