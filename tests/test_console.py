"""The operator console's session: an admin key logs in, the cookie is strict, and a POST
without the session or with a wrong CSRF token is refused and changes nothing."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.client import Api, unique
from tests.support.instance import ADMIN_KEY

GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello"}}}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def browser_like(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar and no API key, as a person's browser would be."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield http


async def _log_in(http: httpx.AsyncClient, key: str = ADMIN_KEY) -> httpx.Response:
    return await http.post("/console/login", data={"api_key": key})


async def _csrf_token(http: httpx.AsyncClient) -> str:
    page = await http.get("/console/suppressions")
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def _suppressed_addresses(api: Api) -> set[str]:
    listed = await api.http.get("/v1/suppressions", params={"channel": "email", "limit": 1000})
    return {row["address"] for row in listed.json()["items"]}


def _suppression(address: str, csrf_token: str | None) -> dict[str, Any]:
    form = {"channel": "email", "address": address, "reason": "test"}
    return form if csrf_token is None else {**form, "csrf_token": csrf_token}


async def test_a_page_without_a_session_redirects_to_the_login_form(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await browser_like.get("/console/dead-letters")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/dead-letters"


async def test_the_admin_key_opens_a_strict_http_only_session(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await _log_in(browser_like)

    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("frontdesk_console=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert ADMIN_KEY.lower() not in cookie
    assert (await browser_like.get("/console/notifications")).status_code == 200


@pytest.mark.parametrize("key", ["fd_not_a_key", ""])
async def test_an_unknown_key_is_refused_without_a_session(
    browser_like: httpx.AsyncClient, key: str
) -> None:
    response = await _log_in(browser_like, key)

    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not an admin key" in response.text


async def test_an_ingest_key_cannot_log_in(
    browser_like: httpx.AsyncClient, frontdesk: tuple[Any, str]
) -> None:
    instance, _ = frontdesk
    _, ingest_key = await instance.store.create_api_key(["ingest"])

    response = await _log_in(browser_like, ingest_key)

    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_a_post_without_a_session_is_refused_and_changes_nothing(
    browser_like: httpx.AsyncClient, api: Api
) -> None:
    address = f"{unique('nosession')}@example.com"

    response = await browser_like.post("/console/suppressions", data=_suppression(address, None))

    assert response.status_code == 403
    assert address not in await _suppressed_addresses(api)


@pytest.mark.parametrize("csrf_token", [None, "", "forged.token"])
async def test_a_post_without_the_right_csrf_token_is_refused_and_changes_nothing(
    browser_like: httpx.AsyncClient, api: Api, csrf_token: str | None
) -> None:
    await _log_in(browser_like)
    address = f"{unique('csrf')}@example.com"

    response = await browser_like.post(
        "/console/suppressions", data=_suppression(address, csrf_token)
    )

    assert response.status_code == 403
    assert address not in await _suppressed_addresses(api)


async def test_a_csrf_token_from_another_session_is_refused(
    browser_like: httpx.AsyncClient, base_url: str, api: Api
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as other_browser:
        await _log_in(other_browser)
        others_token = await _csrf_token(other_browser)
    await _log_in(browser_like)
    address = f"{unique('stolen')}@example.com"

    response = await browser_like.post(
        "/console/suppressions", data=_suppression(address, others_token)
    )

    assert response.status_code == 403
    assert address not in await _suppressed_addresses(api)


async def test_a_forged_session_cookie_is_refused(browser_like: httpx.AsyncClient) -> None:
    browser_like.cookies.set("frontdesk_console", "eyJwIjoiY29uc29sZS1zZXNzaW9uIn0.forged")

    response = await browser_like.get("/console/notifications")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")


async def test_a_post_with_session_and_csrf_token_is_carried_out(
    browser_like: httpx.AsyncClient, api: Api
) -> None:
    await _log_in(browser_like)
    address = f"{unique('allowed')}@example.com"

    response = await browser_like.post(
        "/console/suppressions", data=_suppression(address, await _csrf_token(browser_like))
    )

    assert response.status_code == 303
    assert address in await _suppressed_addresses(api)


async def test_logging_out_removes_the_session_cookie(browser_like: httpx.AsyncClient) -> None:
    await _log_in(browser_like)

    response = await browser_like.post(
        "/console/logout", data={"csrf_token": await _csrf_token(browser_like)}
    )

    assert response.status_code == 303
    assert 'frontdesk_console=""' in response.headers["set-cookie"]
    assert (await browser_like.get("/console/notifications")).status_code == 303


async def test_login_sends_the_operator_only_to_a_console_page(
    browser_like: httpx.AsyncClient,
) -> None:
    response = await browser_like.post(
        "/console/login", data={"api_key": ADMIN_KEY, "next": "https://elsewhere.example/"}
    )

    assert response.headers["location"] == "/console/notifications"


async def test_search_keeps_only_notifications_of_the_template_and_status(
    browser_like: httpx.AsyncClient, api: Api
) -> None:
    user_id = await api.put_user()
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"in_app": False}})
    skipped_template = await api.put_template(GREETING)
    other_template = await api.put_template(GREETING)
    wanted = (await api.send(user_id=user_id, template=skipped_template)).json()["id"]
    other = (await api.send(user_id=user_id, template=other_template)).json()["id"]
    for notification_id in (wanted, other):
        await api.settled(notification_id)
    await _log_in(browser_like)

    page = await browser_like.get(
        "/console/notifications",
        params={"user_id": user_id, "template": skipped_template, "status": "skipped"},
    )

    assert wanted in page.text
    assert other not in page.text


async def test_search_pages_through_a_users_notifications_newest_first(
    browser_like: httpx.AsyncClient, api: Api
) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    response = await api.http.post(
        "/v1/notifications/batch",
        json={
            "notifications": [
                {"user_id": user_id, "template": template, "event_id": unique("evt")}
                for _ in range(55)
            ]
        },
    )
    ids = [result["id"] for result in response.json()["results"]]
    await _log_in(browser_like)

    first = await browser_like.get("/console/notifications", params={"user_id": user_id})
    older = re.search(r'href="\?([^"]*cursor=[^"]*)">Older notifications', first.text)
    assert older is not None
    second = await browser_like.get("/console/notifications?" + html.unescape(older.group(1)))

    shown_first = [i for i in ids if i in first.text]
    shown_second = [i for i in ids if i in second.text]
    assert len(shown_first) == 50 and len(shown_second) == 5
    assert set(shown_first) | set(shown_second) == set(ids)


async def test_a_notification_page_shows_each_skip_with_its_reason(
    browser_like: httpx.AsyncClient, api: Api
) -> None:
    user_id = await api.put_user()
    await api.http.put(f"/v1/users/{user_id}/preferences", json={"channels": {"in_app": False}})
    response = await api.send(user_id=user_id, template=await api.put_template(GREETING))
    await api.settled(response.json()["id"])
    await _log_in(browser_like)

    page = await browser_like.get(f"/console/notifications/{response.json()['id']}")

    assert "delivery.skipped" in page.text
    assert "channels.in_app" in page.text
