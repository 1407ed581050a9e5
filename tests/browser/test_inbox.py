"""The embeddable inbox, <frontdesk-inbox>, on its demo page in a real Chromium: live updates,
reading with the keyboard alone, screen-reader announcements, and no item lost to a cut."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, Page, Route, expect

from tests.browser.support import screenshot
from tests.support.client import Api
from tests.support.instance import ADMIN_KEY
from tests.support.process import ServerProcess

ORDER_SHIPPED = {
    "category": "transactional",
    "channels": {
        "in_app": {
            "title": "Order {{ payload.order_id }} shipped",
            "body": "Your parcel is on its way and should arrive on Thursday.",
            "action_url": "https://shop.example/orders/{{ payload.order_id }}",
        }
    },
}


@pytest.fixture
async def inbox(page: Page, server: ServerProcess, api: Api) -> tuple[Locator, str, str]:
    """The demo page open for a new user: (the component, the user id, a template id)."""
    user_id = await api.put_user(locale="en-GB", name="Ada")
    template = await api.put_template(ORDER_SHIPPED)

    async def as_admin(route: Route) -> None:
        # Only the page itself is the admin's; the component's own calls carry its user token.
        await route.continue_(
            headers={**route.request.headers, "authorization": f"Bearer {ADMIN_KEY}"}
        )

    await page.route("**/demo/inbox?*", as_admin)
    await page.goto(f"{server.base_url}/demo/inbox?user_id={user_id}")
    component = page.locator("frontdesk-inbox")
    await expect(component).to_have_attribute("connection", "open")
    return component, user_id, template


async def _tab_to(page: Page, control: Locator, most_presses: int = 15) -> None:
    """Press Tab, as a keyboard user would, until ``control`` has the focus."""
    for _ in range(most_presses):
        await page.keyboard.press("Tab")
        if await control.evaluate("control => control.getRootNode().activeElement === control"):
            return
    raise AssertionError(f"{most_presses} presses of Tab never reached {control}")


async def test_new_item_raises_the_badge_without_a_reload(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    bell = page.get_by_role("button", name="Notifications, 0 unread")
    await expect(bell).to_be_visible()

    await api.send(user_id=user_id, template=template, payload={"order_id": "A-1"})

    await expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible(
        timeout=2000
    )
    await expect(page.locator("frontdesk-inbox .badge")).to_have_text("1")
    await screenshot(page, "inbox-closed-with-badge")


async def test_live_region_announces_the_new_item(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox

    await api.send(user_id=user_id, template=template, payload={"order_id": "B-2"})

    announcer = page.locator('frontdesk-inbox [aria-live="polite"]')
    await expect(announcer).to_have_text("New notification: Order B-2 shipped")


async def test_item_is_opened_and_read_with_the_keyboard_alone(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    await api.send(user_id=user_id, template=template, payload={"order_id": "C-3"})
    bell = page.get_by_role("button", name="Notifications, 1 unread")
    await expect(bell).to_be_visible()

    await _tab_to(page, bell)
    await page.keyboard.press("Enter")
    panel = page.get_by_role("region", name="Notifications", exact=True)
    await expect(panel).to_contain_text("Order C-3 shipped")
    await expect(panel).to_contain_text("Your parcel is on its way")
    await expect(panel.get_by_role("link", name="Open: Order C-3 shipped")).to_be_visible()
    await screenshot(page, "inbox-open-panel")
    await _tab_to(page, panel.get_by_role("button", name="Mark read: Order C-3 shipped"))
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("button", name="Notifications, 0 unread")).to_be_visible()
    (read,) = (await api.inbox(user_id, status="read"))["items"]
    assert read["title"] == "Order C-3 shipped"
    assert read["read_at"] is not None


async def test_escape_closes_the_panel_and_returns_focus_to_the_bell(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    await api.send(user_id=user_id, template=template, payload={"order_id": "E-5"})
    bell = page.get_by_role("button", name="Notifications, 1 unread")
    await _tab_to(page, bell)
    await page.keyboard.press("Enter")
    await _tab_to(page, page.get_by_role("button", name="Archive: Order E-5 shipped"))

    await page.keyboard.press("Escape")

    await expect(page.get_by_role("region", name="Notifications", exact=True)).to_be_hidden()
    await expect(bell).to_have_attribute("aria-expanded", "false")
    await expect(bell).to_be_focused()


async def test_item_sent_while_the_stream_is_cut_arrives_after_reconnecting(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    component, user_id, template = inbox
    await page.context.set_offline(True)
    await expect(component).to_have_attribute("connection", "reconnecting")
    sent = await api.send(user_id=user_id, template=template, payload={"order_id": "D-4"})
    await api.settled(sent.json()["id"])

    await page.context.set_offline(False)

    await expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    announcer = page.locator('frontdesk-inbox [aria-live="polite"]')
    await expect(announcer).to_have_text("New notification: Order D-4 shipped")


async def test_demo_page_needs_the_admin_key(page: Page, server: ServerProcess, api: Api) -> None:
    user_id = await api.put_user()

    response = await page.goto(f"{server.base_url}/demo/inbox?user_id={user_id}")

    assert response is not None and response.status == 401


async def test_archived_item_leaves_the_panel_and_focus_stays_in_it(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    for order_id in ("F-6", "F-7"):
        await api.send(user_id=user_id, template=template, payload={"order_id": order_id})
    bell = page.get_by_role("button", name="Notifications, 2 unread")
    await _tab_to(page, bell)
    await page.keyboard.press("Enter")
    await _tab_to(page, page.get_by_role("button", name="Archive: Order F-7 shipped"))

    await page.keyboard.press("Enter")

    panel = page.get_by_role("region", name="Notifications", exact=True)
    await expect(panel).not_to_contain_text("Order F-7 shipped")
    await expect(panel.get_by_role("button", name="Mark read: Order F-6 shipped")).to_be_focused()
    (archived,) = (await api.inbox(user_id, status="archived"))["items"]
    assert archived["title"] == "Order F-7 shipped"


async def test_item_arriving_while_the_panel_is_used_keeps_the_focus_in_place(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    await api.send(user_id=user_id, template=template, payload={"order_id": "H-1"})
    await _tab_to(page, page.get_by_role("button", name="Notifications, 1 unread"))
    await page.keyboard.press("Enter")
    archive = page.get_by_role("button", name="Archive: Order H-1 shipped")
    await _tab_to(page, archive)

    await api.send(user_id=user_id, template=template, payload={"order_id": "H-2"})

    panel = page.get_by_role("region", name="Notifications", exact=True)
    await expect(panel).to_contain_text("Order H-2 shipped")
    await expect(archive).to_be_focused()


async def test_mark_all_read_clears_the_badge(
    page: Page, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    for order_id in ("G-8", "G-9"):
        await api.send(user_id=user_id, template=template, payload={"order_id": order_id})
    await page.get_by_role("button", name="Notifications, 2 unread").click()

    await page.get_by_role("button", name="Mark all read").click()

    await expect(page.get_by_role("button", name="Notifications, 0 unread")).to_be_visible()
    assert (await api.inbox(user_id, status="unread"))["items"] == []


async def test_load_more_fetches_the_next_page(
    page: Page, server: ServerProcess, api: Api, inbox: tuple[Locator, str, str]
) -> None:
    _, user_id, template = inbox
    for number in range(21):
        sent = await api.send(user_id=user_id, template=template, payload={"order_id": number})
    await api.settled(sent.json()["id"])
    await page.reload()
    await page.get_by_role("button", name="Notifications, 21 unread").click()
    panel = page.get_by_role("region", name="Notifications", exact=True)
    await expect(panel.get_by_role("listitem")).to_have_count(20)

    await panel.get_by_role("button", name="Load more").click()

    await expect(panel.get_by_role("listitem")).to_have_count(21)
    await expect(panel.get_by_role("button", name="Load more")).to_have_count(0)
    await expect(panel.get_by_role("link", name="Open: Order 0 shipped")).to_be_focused()
