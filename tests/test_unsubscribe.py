"""One-click unsubscribe (RFC 8058): marketing email carries the link and headers; the signed
token alone opts the user out; a forged token changes nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.client import Api, unique

NEWSLETTER = {
    "category": "marketing",
    "channels": {
        "email": {
            "subject": "News",
            "html": '<p>News</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        }
    },
}


async def _newsletter_to_new_user(api: Api) -> tuple[str, str, str, dict[str, object]]:
    address = f"{unique('news')}@example.com"
    user_id = await api.put_user(email=address)
    template = await api.put_template(NEWSLETTER)
    response = await api.send(user_id=user_id, template=template)
    await api.settled(response.json()["id"])
    (message,) = await api.sandbox(channel="email", to=address)
    return user_id, address, template, message


def _token(header: str) -> str:
    url = header.strip("<>")
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_marketing_email_carries_the_one_click_headers_and_link(api: Api) -> None:
    _, _, _, message = await _newsletter_to_new_user(api)

    headers = message["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http")
    assert "/v1/unsubscribe?token=" in message["content"]["html"]


async def test_posting_the_token_opts_out_and_the_next_marketing_email_is_skipped(
    api: Api, base_url: str
) -> None:
    user_id, _, template, message = await _newsletter_to_new_user(api)
    token = _token(message["headers"]["List-Unsubscribe"])

    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        response = await anonymous.post(
            "/v1/unsubscribe",
            params={"token": token},
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert response.status_code == 200
    next_one = await api.send(user_id=user_id, template=template)
    (email,) = (await api.settled(next_one.json()["id"]))["deliveries"]
    assert email["status"] == "skipped"
    assert "unsubscribed from marketing" in email["reason"]


async def test_opening_the_link_shows_a_page_and_changes_nothing(api: Api, base_url: str) -> None:
    user_id, _, _, message = await _newsletter_to_new_user(api)
    token = _token(message["headers"]["List-Unsubscribe"])

    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        page = await anonymous.get("/v1/unsubscribe", params={"token": token})

    assert page.status_code == 200
    assert "<form method=post" in page.text
    preferences = (await api.http.get(f"/v1/users/{user_id}/preferences")).json()
    assert preferences["unsubscribed"] == []


async def test_an_altered_token_is_refused_and_changes_nothing(api: Api, base_url: str) -> None:
    user_id, _, _, message = await _newsletter_to_new_user(api)
    token = _token(message["headers"]["List-Unsubscribe"])
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        response = await anonymous.post("/v1/unsubscribe", params={"token": altered})

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    preferences = (await api.http.get(f"/v1/users/{user_id}/preferences")).json()
    assert preferences["unsubscribed"] == []


async def test_saving_the_category_again_lifts_the_unsubscribe(api: Api, base_url: str) -> None:
    user_id, _, template, message = await _newsletter_to_new_user(api)
    token = _token(message["headers"]["List-Unsubscribe"])
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        await anonymous.post("/v1/unsubscribe", params={"token": token})

    await api.http.put(
        f"/v1/users/{user_id}/preferences", json={"categories": {"marketing": {"email": True}}}
    )

    again = await api.send(user_id=user_id, template=template)
    (email,) = (await api.settled(again.json()["id"]))["deliveries"]
    assert email["status"] == "sent"


async def test_a_marketing_email_without_an_unsubscribe_link_is_refused(api: Api) -> None:
    body = {"category": "marketing", "channels": {"email": {"subject": "s", "html": "<p>x</p>"}}}

    response = await api.http.put(f"/v1/templates/{unique('tpl')}", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "channels.email.html"
