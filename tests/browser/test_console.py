"""The operator console in a real browser: log in and search with the keyboard alone, read a
notification's timeline with its reasons, and redrive a group of dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import screenshot
from tests.support.client import Api, eventually, unique
from tests.support.databases import sqlite_url
from tests.support.instance import ADMIN_KEY
from tests.support.process import ServerProcess

EMAIL = {"subject": "Your receipt", "html": "<p>Thanks, {{ user.name }}</p>"}
SMS = {"text": "Your receipt is ready"}
IN_APP = {"title": "Receipt", "body": "Your receipt is ready"}
ORDER_EMAIL = {"subject": "Order {{ payload.order }}", "html": "<p>Order {{ payload.order }}</p>"}


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """Email gives up after two quick attempts, so a failing provider makes dead letters."""
    directory = tmp_path_factory.mktemp("console")
    running = ServerProcess(
        sqlite_url(directory),
        {
            "FRONTDESK_CHANNELS__EMAIL__MAX_ATTEMPTS": "2",
            "FRONTDESK_CHANNELS__EMAIL__RETRY_BASE_SECONDS": "0.05",
        },
        log_path=directory / "frontdesk.log",
    )
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)


async def _log_in_by_keyboard(page: Page, server: ServerProcess) -> None:
    await page.goto(f"{server.base_url}/console")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.keyboard.type(ADMIN_KEY)  # the key field has the focus on arrival
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Notifications")).to_be_visible()


async def _tab_to(page: Page, element_id: str) -> None:
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with the Tab key")


async def _settled(api: Api, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return await api.settled(response.json()["id"])


async def test_an_operator_finds_a_notification_and_reads_why_sms_was_skipped(
    page: Page, server: ServerProcess, api: Api
) -> None:
    user_id = await api.put_user(name="Ada", phone="+14155550142")
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"sms": False}})
    template = await api.put_template({"channels": {"sms": SMS, "in_app": IN_APP}})
    notification = await _settled(api, await api.send(user_id=user_id, template=template))
    await page.goto(f"{server.base_url}/console/login")
    await screenshot(page, "console-login")

    await _log_in_by_keyboard(page, server)
    await _tab_to(page, "user_id")
    await page.keyboard.type(user_id)
    await page.keyboard.press("Enter")
    result = page.get_by_role("link", name=notification["id"])
    await expect(result).to_be_visible()
    await screenshot(page, "console-search-results")
    await result.focus()
    await page.keyboard.press("Enter")

    timeline = page.get_by_role("region", name="Timeline")
    skipped = timeline.get_by_role("listitem").filter(has_text="delivery.skipped")
    await expect(skipped).to_contain_text("on sms")
    await expect(skipped).to_contain_text("channels.sms")
    await expect(timeline).to_contain_text("notification.accepted")
    await expect(timeline).to_contain_text("delivery.sent")
    await screenshot(page, "console-timeline")


async def test_the_first_tab_stop_is_the_skip_link(page: Page, server: ServerProcess) -> None:
    await _log_in_by_keyboard(page, server)

    await page.keyboard.press("Tab")

    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"


async def test_an_operator_redrives_a_group_of_dead_letters_and_they_are_sent(
    page: Page, server: ServerProcess, api: Api
) -> None:
    template = await api.put_template({"channels": {"email": EMAIL}})
    await api.http.put("/v1/sandbox/faults/email", json={"error": "retryable", "times": 1000})
    sent = [
        await api.send(
            user_id=await api.put_user(name="Ada", email=f"{unique('dead')}@example.com"),
            template=template,
        )
        for _ in range(3)
    ]
    notifications = [await _settled(api, response) for response in sent]
    assert {n["deliveries"][0]["status"] for n in notifications} == {"dead"}
    await api.http.delete("/v1/sandbox/faults/email")
    await _log_in_by_keyboard(page, server)
    await page.get_by_role("link", name="Dead letters").click()
    group = page.locator(".dead-letter-group").filter(has_text="email")
    await expect(group).to_contain_text("sandbox")
    await group.get_by_text("3 deliveries").click()
    await screenshot(page, "console-dead-letters")

    await group.get_by_role("button", name="Redrive all 3 in this group").click()

    await expect(page.get_by_role("status")).to_contain_text("Redriven: 3 deliveries")
    for notification in notifications:

        async def is_sent(notification_id: str = notification["id"]) -> bool:
            found = await api.notification(notification_id)
            return bool(found["deliveries"][0]["status"] == "sent")

        await eventually(is_sent)
    await page.reload()
    await expect(page.get_by_text("No dead letters.")).to_be_visible()
    await page.goto(f"{server.base_url}/console/notifications/{notifications[0]['id']}")
    timeline = page.get_by_role("region", name="Timeline")
    await expect(timeline).to_contain_text("sandbox fault: temporary error")
    await expect(timeline).to_contain_text("redriven from the dead-letter list")
    await screenshot(page, "console-timeline-redriven")


async def test_a_form_with_a_wrong_csrf_token_is_refused(page: Page, server: ServerProcess) -> None:
    await _log_in_by_keyboard(page, server)
    await page.get_by_role("link", name="Suppressions").click()
    suppress_form = page.locator('form[action="/console/suppressions"]')
    await suppress_form.locator('[name="csrf_token"]').evaluate("input => input.value = 'x'")
    await page.get_by_label("Address").fill(f"{unique('csrf')}@example.com")

    async with page.expect_response("**/console/suppressions") as answer:
        await page.get_by_role("button", name="Suppress").click()

    assert (await answer.value).status == 403


async def test_a_template_is_previewed_per_channel_in_a_chosen_locale(
    page: Page, server: ServerProcess, api: Api
) -> None:
    template = await api.put_template({"channels": {"in_app": IN_APP}})
    await api.put_template(
        {
            "channels": {"email": ORDER_EMAIL, "in_app": IN_APP},
            "locales": {"fr": {"in_app": {"title": "Reçu", "body": "Votre reçu est prêt"}}},
        },
        template,
    )
    await _log_in_by_keyboard(page, server)
    await page.get_by_role("link", name="Templates").click()
    await page.get_by_label("Template id").fill(template)
    await page.get_by_label("Template id").press("Enter")

    await page.get_by_label("Locale").fill("fr")
    await page.get_by_label("Payload (JSON)").fill('{"order": "A-17"}')
    await page.get_by_role("button", name="Preview").click()

    await expect(page.get_by_role("link", name="version 1")).to_be_visible()
    preview = page.get_by_role("region", name="in_app")
    await expect(preview).to_contain_text("Votre reçu est prêt")
    email_html = page.frame_locator('iframe[title="email html preview"]')
    await expect(email_html.get_by_text("Order A-17")).to_be_visible()
    # Chromium paints a sandboxed frame only once it has been on screen.
    await email_html.owner.scroll_into_view_if_needed()
    await screenshot(page, "console-template-preview")


async def test_provider_health_shows_each_provider_that_sent(
    page: Page, server: ServerProcess, api: Api
) -> None:
    template = await api.put_template({"channels": {"in_app": IN_APP}})
    await _settled(api, await api.send(user_id=await api.put_user(), template=template))
    await _log_in_by_keyboard(page, server)

    await page.get_by_role("link", name="Providers").click()

    row = page.get_by_role("row").filter(has_text="in_app")
    await expect(row.first).to_contain_text("closed")
    await screenshot(page, "console-providers")


async def test_an_operator_suppresses_an_address_and_lifts_it(
    page: Page, server: ServerProcess, api: Api
) -> None:
    address = f"{unique('bounced')}@example.com"
    await _log_in_by_keyboard(page, server)
    await page.get_by_role("link", name="Suppressions").click()
    await page.get_by_label("Address").fill(address)
    await page.get_by_label("Reason").fill("hard bounce reported by phone")
    await page.get_by_role("button", name="Suppress").click()
    await expect(page.get_by_role("status")).to_contain_text(f"{address} is suppressed")
    await screenshot(page, "console-suppressions")

    await page.get_by_role("button", name=f"Remove {address} (email)").click()

    await expect(page.get_by_role("status")).to_contain_text("no longer suppressed")
    listed = await api.http.get("/v1/suppressions", params={"channel": "email"})
    assert address not in {row["address"] for row in listed.json()["items"]}
