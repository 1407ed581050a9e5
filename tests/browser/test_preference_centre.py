"""The hosted preference centre in a real browser: reached from a marketing email's link,
used with the keyboard alone, and refusing links that were altered or have expired."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from frontdesk.core.ports import SystemClock
from frontdesk.core.tokens import PREFERENCES, sign_token
from frontdesk.store.sql import SqlStore
from tests.browser.support import screenshot
from tests.support.client import Api, unique
from tests.support.databases import sqlite_url
from tests.support.process import ServerProcess

NEWSLETTER = {
    "category": "marketing",
    "channels": {
        "email": {
            "subject": "Autumn news",
            "html": '<p>News</p><a href="{{ preferences_url }}">Your preferences</a>'
            ' <a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        }
    },
}
PREFERENCES_LINK = re.compile(r'href="([^"]*/preferences\?token=[^"]+)"')


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """As the shared server, but the links in its messages lead back to it."""
    directory = tmp_path_factory.mktemp("preference-centre")
    running = ServerProcess(sqlite_url(directory), log_path=directory / "frontdesk.log")
    # Its port is chosen when it is made, so its public URL can only be set afterwards.
    running.environment["FRONTDESK_SERVER__PUBLIC_URL"] = running.base_url
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)


async def _newsletter_link(api: Api) -> tuple[str, str, str]:
    """(user id, newsletter template, the preferences link the newsletter carried)."""
    address = f"{unique('reader')}@example.com"
    user_id = await api.put_user(email=address, name="Ada")
    template = await api.put_template(NEWSLETTER)
    sent = await api.send(user_id=user_id, template=template)
    await api.settled(sent.json()["id"])
    (email,) = await api.sandbox(channel="email", to=address)
    link = PREFERENCES_LINK.search(email["content"]["html"])
    assert link is not None, email["content"]["html"]
    return user_id, template, link.group(1)


async def _tab_to(page: Page, element_id: str, most: int = 60) -> None:
    """Press Tab until the element has the focus, as a keyboard user would."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


async def _token_secret(server: ServerProcess) -> str:
    """The secret the server signs its links with, kept in its database."""
    store = SqlStore.connect(server.database_url, SystemClock())
    try:
        return await store.server_secret("tokens")
    finally:
        await store.close()


async def test_a_reader_turns_marketing_email_off_with_the_keyboard_alone(
    page: Page, api: Api
) -> None:
    user_id, newsletter, link = await _newsletter_link(api)
    await page.goto(link)
    await screenshot(page, "preference-centre")

    await _tab_to(page, "marketing-email")
    await page.keyboard.press("Space")
    await _tab_to(page, "quiet_start")
    await page.keyboard.type("22:00")
    await _tab_to(page, "quiet_end")
    await page.keyboard.type("07:00")
    await _tab_to(page, "timezone")
    await page.keyboard.type("Europe/Paris")
    await _tab_to(page, "save")
    await page.keyboard.press("Enter")

    confirmation = page.get_by_role("status")
    await expect(confirmation).to_have_text("Your preferences are saved.")
    await expect(confirmation).to_be_focused()
    news = page.get_by_role("group", name="News and offers")
    await expect(news.get_by_role("checkbox", name="Email")).not_to_be_checked()
    await screenshot(page, "preference-centre-saved")
    user = (await api.http.get(f"/v1/users/{user_id}")).json()
    assert user["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert user["timezone"] == "Europe/Paris"
    next_one = await api.send(user_id=user_id, template=newsletter)
    (email,) = (await api.settled(next_one.json()["id"]))["deliveries"]
    assert email["status"] == "skipped"


async def test_an_altered_link_shows_an_error_page_and_changes_nothing(
    page: Page, api: Api
) -> None:
    user_id, _, link = await _newsletter_link(api)
    altered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")

    response = await page.goto(altered)

    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")
    await screenshot(page, "preference-centre-refused")
    preferences = (await api.http.get(f"/v1/users/{user_id}/preferences")).json()
    assert preferences["categories"] == {}


async def test_an_expired_link_shows_an_error_page(
    page: Page, api: Api, server: ServerProcess
) -> None:
    user_id = await api.put_user(email=f"{unique('late')}@example.com")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    expired = sign_token(await _token_secret(server), PREFERENCES, user_id, yesterday)

    response = await page.goto(f"{server.base_url}/preferences?token={expired}")

    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
    await screenshot(page, "preference-centre-expired")
