"""Templates: versions, ETags, preview per channel and locale, and strict rendering."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api, unique

ORDER_SHIPPED: dict[str, Any] = {
    "category": "transactional",
    "channels": {
        "email": {
            "subject": "Order {{ payload.order_id }} shipped",
            "html": "<p>Hi {{ user.name | default('there') }}, "
            "order {{ payload.order_id }} is on its way.</p>",
        },
        "sms": {"text": "Order {{ payload.order_id }} shipped"},
    },
    "locales": {
        "fr": {
            "email": {"subject": "Commande {{ payload.order_id }} expédiée"},
            "sms": {"text": "Commande {{ payload.order_id }} expédiée"},
        }
    },
}


def _with_subject(subject: str) -> dict[str, Any]:
    email = {**ORDER_SHIPPED["channels"]["email"], "subject": subject}
    return {**ORDER_SHIPPED, "channels": {**ORDER_SHIPPED["channels"], "email": email}}


async def _preview(api: Api, template_id: str, **body: Any) -> dict[str, Any]:
    response = await api.http.post(f"/v1/templates/{template_id}/preview", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_put_creates_the_next_version(api: Api) -> None:
    template_id = unique("tpl")

    first = await api.http.put(f"/v1/templates/{template_id}", json=ORDER_SHIPPED)
    second = await api.http.put(f"/v1/templates/{template_id}", json=_with_subject("Shipped!"))

    assert first.status_code == second.status_code == 201
    assert first.json()["template_id"] == second.json()["template_id"] == template_id
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["etag"] != second.json()["etag"]


async def test_get_returns_the_latest_version_with_its_etag(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)
    latest = await api.http.put(f"/v1/templates/{template_id}", json=_with_subject("Shipped!"))

    response = await api.http.get(f"/v1/templates/{template_id}")

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.json()["channels"]["email"]["subject"] == "Shipped!"
    assert response.headers["ETag"] == latest.json()["etag"]


async def test_if_none_match_with_the_current_etag_is_not_modified(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)
    etag = (await api.http.get(f"/v1/templates/{template_id}")).headers["ETag"]

    response = await api.http.get(f"/v1/templates/{template_id}", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""


async def test_if_none_match_with_an_older_etag_returns_the_latest(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)
    old_etag = (await api.http.get(f"/v1/templates/{template_id}")).headers["ETag"]
    await api.http.put(f"/v1/templates/{template_id}", json=_with_subject("Shipped!"))

    response = await api.http.get(
        f"/v1/templates/{template_id}", headers={"If-None-Match": old_etag}
    )

    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_if_none_match_star_on_an_existing_template_is_not_modified(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    response = await api.http.get(f"/v1/templates/{template_id}", headers={"If-None-Match": "*"})

    assert response.status_code == 304


async def test_an_earlier_version_stays_readable(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)
    await api.http.put(f"/v1/templates/{template_id}", json=_with_subject("Shipped!"))

    response = await api.http.get(f"/v1/templates/{template_id}/versions/1")

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["channels"]["email"]["subject"] == "Order {{ payload.order_id }} shipped"


async def test_preview_renders_every_channel(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    preview = await _preview(api, template_id, payload={"order_id": "A-1"})

    assert preview["channels"]["email"]["subject"] == "Order A-1 shipped"
    assert preview["channels"]["sms"]["text"] == "Order A-1 shipped"


async def test_preview_in_a_regional_locale_falls_back_to_its_language(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    preview = await _preview(api, template_id, payload={"order_id": "A-1"}, locale="fr-CA")

    assert preview["locale"] == "fr"
    assert preview["channels"]["email"]["subject"] == "Commande A-1 expédiée"
    assert preview["channels"]["sms"]["text"] == "Commande A-1 expédiée"


async def test_preview_in_an_unknown_language_falls_back_to_the_default(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    preview = await _preview(api, template_id, payload={"order_id": "A-1"}, locale="de-AT")

    assert preview["locale"] is None
    assert preview["channels"]["sms"]["text"] == "Order A-1 shipped"


async def test_preview_for_a_user_uses_their_profile_and_locale(api: Api) -> None:
    user_id = await api.put_user(name="Élodie", locale="fr-CA")
    template_id = await api.put_template(ORDER_SHIPPED)

    preview = await _preview(api, template_id, payload={"order_id": "A-1"}, user_id=user_id)

    assert preview["channels"]["email"]["subject"] == "Commande A-1 expédiée"
    assert "Hi Élodie" in preview["channels"]["email"]["html"]


async def test_preview_for_an_unknown_user_is_refused_naming_it(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    response = await api.http.post(
        f"/v1/templates/{template_id}/preview",
        json={"payload": {"order_id": "A-1"}, "user_id": unique("ghost")},
    )

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["user_id"]


async def test_preview_missing_a_variable_is_refused_naming_it(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    response = await api.http.post(
        f"/v1/templates/{template_id}/preview", json={"payload": {"order": "A-1"}}
    )

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert {e["field"].split(".")[1] for e in errors} == {"email", "sms"}
    assert all("payload.order_id" in e["message"] for e in errors)


async def test_unknown_template_is_a_404(api: Api) -> None:
    template_id = unique("no-such-template")

    responses = [
        await api.http.get(f"/v1/templates/{template_id}"),
        await api.http.get(f"/v1/templates/{template_id}/versions/1"),
        await api.http.post(f"/v1/templates/{template_id}/preview", json={"payload": {}}),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in responses)


async def test_unknown_version_is_a_404(api: Api) -> None:
    template_id = await api.put_template(ORDER_SHIPPED)

    response = await api.http.get(f"/v1/templates/{template_id}/versions/2")

    assert response.status_code == 404


async def test_undefined_variable_never_renders_blank(api: Api) -> None:
    template_id = await api.put_template(
        {"channels": {"sms": {"text": "Hi {{ user.nickname }}{{ payload.missing | default('') }}"}}}
    )

    response = await api.http.post(f"/v1/templates/{template_id}/preview", json={"payload": {}})

    assert response.status_code == 422, response.text
    assert "user.nickname" in response.json()["errors"][0]["message"]


async def test_undefined_variable_in_a_filter_or_loop_is_still_an_error(api: Api) -> None:
    text = "{% for line in payload.lines %}{{ line }}{% endfor %} {{ payload.total | upper }}"
    template_id = await api.put_template({"channels": {"sms": {"text": text}}})

    response = await api.http.post(
        f"/v1/templates/{template_id}/preview", json={"payload": {"lines": ["a"]}}
    )

    assert response.status_code == 422, response.text
    assert "payload.total" in response.json()["errors"][0]["message"]
