"""The hosted preference centre over plain HTTP: what a signed link shows and saves, and that
a bad link, a foreign form or bad values change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from frontdesk.api.pages.preference_centre import TEXTS
from frontdesk.bootstrap import Frontdesk
from frontdesk.core.tokens import PREFERENCES, Links, sign_token
from tests.support.client import Api

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def links(frontdesk: tuple[object, str]) -> Links:
    return cast(Frontdesk, frontdesk[0]).links


@pytest.fixture
async def visitor(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with no credentials: all it has is the link."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous:
        yield anonymous


def _token(links: Links, user_id: str) -> str:
    url = links.for_user(user_id, "marketing", datetime.now(UTC))["preferences_url"]
    return parse_qs(urlsplit(url).query)["token"][0]


def _expired_token(links: Links, user_id: str) -> str:
    return sign_token(links.secret, PREFERENCES, user_id, datetime.now(UTC) - timedelta(hours=1))


def _form(token: str, *opt_ins: str, start: str = "", end: str = "", timezone: str = "") -> str:
    """The page's form as a browser sends it: a ticked box sends its pair, an unticked none."""
    fields = [("token", token), *(("opt_in", pair) for pair in opt_ins)]
    fields += [("quiet_start", start), ("quiet_end", end), ("timezone", timezone)]
    return urlencode(fields)


async def _preferences(api: Api, user_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/users/{user_id}/preferences")
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json())


async def _user(api: Api, user_id: str) -> dict[str, Any]:
    return cast(dict[str, Any], (await api.http.get(f"/v1/users/{user_id}")).json())


async def test_the_link_shows_the_choices_in_the_users_language(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="ines@example.com", locale="fr-CA")

    page = await visitor.get("/preferences", params={"token": _token(links, user_id)})

    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert TEXTS["fr"]["title"] in page.text
    assert 'value="marketing.email"' in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_saving_writes_the_preferences_as_the_user_did_it(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="ada@example.com")
    everything_but_marketing_email = ["transactional.email", "transactional.in_app"]

    saved = await visitor.post(
        "/preferences",
        content=_form(_token(links, user_id), *everything_but_marketing_email),
        headers=FORM,
    )

    assert saved.status_code == 200
    assert TEXTS["en"]["saved"] in saved.text
    categories = (await _preferences(api, user_id))["categories"]
    assert categories["marketing"] == {"email": False, "push": False, "in_app": False}
    assert categories["transactional"]["email"] is True
    audit = await api.http.get(
        "/v1/audit", params={"user_id": user_id, "type": "user.preferences_changed"}
    )
    (entry,) = audit.json()["items"]
    assert entry["actor"] == "user"


async def test_saving_sets_quiet_hours_and_time_zone(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="grace@example.com", name="Grace")

    await visitor.post(
        "/preferences",
        content=_form(_token(links, user_id), start="22:00", end="07:00", timezone="Asia/Tokyo"),
        headers=FORM,
    )

    user = await _user(api, user_id)
    assert user["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert user["timezone"] == "Asia/Tokyo"
    assert (user["name"], user["email"]) == ("Grace", "grace@example.com")


async def test_saving_marketing_email_again_lifts_an_unsubscribe(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="lin@example.com")
    unsubscribe = urlsplit(
        links.for_user(user_id, "marketing", datetime.now(UTC))["unsubscribe_url"]
    )
    assert (await visitor.post(f"{unsubscribe.path}?{unsubscribe.query}")).status_code == 200

    await visitor.post(
        "/preferences", content=_form(_token(links, user_id), "marketing.email"), headers=FORM
    )

    assert (await _preferences(api, user_id))["unsubscribed"] == []


async def test_marketing_texts_without_consent_cannot_be_switched_on_here(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(phone="+14155550100")

    await visitor.post(
        "/preferences", content=_form(_token(links, user_id), "marketing.sms"), headers=FORM
    )

    assert "sms" not in (await _preferences(api, user_id))["categories"]["marketing"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_altered_link_is_refused_and_changes_nothing(
    api: Api, links: Links, visitor: httpx.AsyncClient, method: str
) -> None:
    user_id = await api.put_user(email="eve@example.com")
    token = _token(links, user_id)
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    response = await visitor.request(
        method, "/preferences", params={"token": altered}, content=_form(altered), headers=FORM
    )

    assert response.status_code == 403
    assert TEXTS["en"]["link.invalid.title"] in response.text
    assert (await _preferences(api, user_id))["categories"] == {}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_expired_link_is_gone_and_changes_nothing(
    api: Api, links: Links, visitor: httpx.AsyncClient, method: str
) -> None:
    user_id = await api.put_user(email="old@example.com")
    expired = _expired_token(links, user_id)

    response = await visitor.request(
        method, "/preferences", params={"token": expired}, content=_form(expired), headers=FORM
    )

    assert response.status_code == 410
    assert TEXTS["en"]["link.expired.title"] in response.text
    assert (await _preferences(api, user_id))["categories"] == {}


async def test_a_link_for_another_purpose_is_refused(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="mix@example.com")
    unsubscribe = links.for_user(user_id, "marketing", datetime.now(UTC))["unsubscribe_url"]
    unsubscribe_token = parse_qs(urlsplit(unsubscribe).query)["token"][0]

    response = await visitor.get("/preferences", params={"token": unsubscribe_token})

    assert response.status_code == 403


async def test_a_page_without_a_link_is_refused(visitor: httpx.AsyncClient) -> None:
    response = await visitor.get("/preferences", headers={"Accept-Language": "fr-FR,fr;q=0.9"})

    assert response.status_code == 403
    assert '<html lang="fr">' in response.text


async def test_the_link_of_an_erased_user_shows_nothing(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="gone@example.com")
    token = _token(links, user_id)
    await api.http.delete(f"/v1/users/{user_id}")

    response = await visitor.get("/preferences", params={"token": token})

    assert response.status_code == 404


async def test_a_form_sent_from_another_site_is_refused_and_changes_nothing(
    api: Api, links: Links, visitor: httpx.AsyncClient
) -> None:
    user_id = await api.put_user(email="csrf@example.com")

    response = await visitor.post(
        "/preferences",
        content=_form(_token(links, user_id)),
        headers={**FORM, "Origin": "https://attacker.example"},
    )

    assert response.status_code == 403
    assert (await _preferences(api, user_id))["categories"] == {}


async def test_a_form_sent_from_this_site_is_accepted(
    api: Api, links: Links, visitor: httpx.AsyncClient, base_url: str
) -> None:
    user_id = await api.put_user(email="same@example.com")

    response = await visitor.post(
        "/preferences", content=_form(_token(links, user_id)), headers={**FORM, "Origin": base_url}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("start", "end", "timezone", "field", "message"),
    [
        ("25:00", "07:00", "", "quiet_start", "error.time"),
        ("22:00", "", "", "quiet_end", "error.quiet_hours_pair"),
        ("", "", "Mars/Olympus_Mons", "timezone", "error.timezone"),
    ],
)
async def test_bad_values_show_the_form_again_and_change_nothing(
    api: Api,
    links: Links,
    visitor: httpx.AsyncClient,
    start: str,
    end: str,
    timezone: str,
    field: str,
    message: str,
) -> None:
    user_id = await api.put_user(email="typo@example.com")

    response = await visitor.post(
        "/preferences",
        content=_form(_token(links, user_id), start=start, end=end, timezone=timezone),
        headers=FORM,
    )

    assert response.status_code == 422
    assert f'href="#{field}"' in response.text
    assert TEXTS["en"][message] in response.text
    assert (await _preferences(api, user_id))["categories"] == {}
    assert (await _user(api, user_id))["quiet_hours"] is None


def test_every_language_has_every_text() -> None:
    english = set(TEXTS["en"])

    assert all(set(texts) == english for texts in TEXTS.values())
