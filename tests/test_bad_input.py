"""Bad input is refused with a problem document naming the offending field, and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.client import Api, unique

PROBLEM_JSON = "application/problem+json"

ORDER_SHIPPED: dict[str, Any] = {
    "category": "transactional",
    "channels": {
        "email": {"subject": "Order {{ payload.order_id }} shipped", "html": "<p>On its way</p>"},
        "in_app": {"title": "Order shipped", "body": "Order {{ payload.order_id }}"},
    },
}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response's problem document, once its status and media type are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    return response.json()


def fields(document: dict[str, Any]) -> list[str]:
    return [error["field"] for error in document["errors"]]


async def _customer(api: Api) -> tuple[str, str]:
    email = f"{unique('bad')}@example.com"
    return await api.put_user(email=email), email


async def _audit(api: Api, user_id: str) -> list[dict[str, Any]]:
    response = await api.http.get("/v1/audit", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


NOTHING = {"audit": [], "inbox": [], "sandbox": []}


async def _stored_for(api: Api, user_id: str, email: str) -> dict[str, list[dict[str, Any]]]:
    """Every trace a notification for this user would leave; the audit is written on accept."""
    return {
        "audit": await _audit(api, user_id),
        "inbox": (await api.inbox(user_id))["items"],
        "sandbox": await api.sandbox(to=email),
    }


async def test_missing_template_is_named_and_nothing_is_stored(api: Api) -> None:
    user_id, email = await _customer(api)

    response = await api.http.post(
        "/v1/notifications",
        json={"event_id": unique("evt"), "user_id": user_id, "payload": {"order_id": "A-1"}},
    )

    assert fields(problem(response, 422)) == ["template"]
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_misspelled_field_name_is_named(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)

    response = await api.send(user_id=user_id, template=template, paylod={"order_id": "A-1"})

    document = problem(response, 422)
    assert fields(document) == ["paylod"]
    assert document["errors"][0]["message"] == "unknown field"
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_wrongly_typed_field_is_named(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)

    response = await api.send(user_id=user_id, template=template, channels="email")

    assert fields(problem(response, 422)) == ["channels"]
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_unknown_template_is_named(api: Api) -> None:
    user_id, email = await _customer(api)

    response = await api.send(user_id=user_id, template=unique("no-such-template"))

    document = problem(response, 422)
    assert fields(document) == ["template"]
    assert "no template" in document["errors"][0]["message"]
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_unknown_user_is_named(api: Api) -> None:
    template = await api.put_template(ORDER_SHIPPED)
    ghost = unique("ghost")

    response = await api.send(user_id=ghost, template=template, payload={"order_id": "A-1"})

    assert fields(problem(response, 422)) == ["user_id"]
    assert await _audit(api, ghost) == []


async def test_channel_the_template_lacks_is_refused(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)

    response = await api.send(user_id=user_id, template=template, channels=["sms"])

    document = problem(response, 422)
    assert fields(document) == ["channels"]
    assert "sms" in document["errors"][0]["message"]
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_malformed_json_is_a_400_problem(api: Api) -> None:
    response = await api.http.post(
        "/v1/notifications",
        content=b'{"event_id": "e1", "user_id": ',
        headers={"Content-Type": "application/json"},
    )

    document = problem(response, 400)
    assert "not valid JSON" in document["detail"]


async def test_batch_over_a_thousand_is_refused_whole(api: Api) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    items = [
        {
            "event_id": unique("evt"),
            "user_id": user_id,
            "template": template,
            "payload": {"order_id": str(n)},
        }
        for n in range(1001)
    ]

    response = await api.http.post("/v1/notifications/batch", json={"notifications": items})

    document = problem(response, 413)
    assert "1000" in document["detail"]
    assert await _stored_for(api, user_id, email) == NOTHING


async def test_bad_item_in_a_batch_fails_alone_and_results_keep_their_order(api: Api) -> None:
    user_id, _ = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    good = {"user_id": user_id, "template": template, "payload": {"order_id": "A-1"}}
    items = [
        {**good, "event_id": unique("evt")},
        {**good, "event_id": unique("evt"), "template": unique("no-such-template")},
        {**good, "event_id": unique("evt")},
    ]

    response = await api.http.post("/v1/notifications/batch", json={"notifications": items})

    assert response.status_code == 200, response.text
    first, bad, last = response.json()["results"]
    assert first["status"] == last["status"] == "accepted"
    assert bad["status"] == "rejected"
    assert bad["error"]["status"] == 422
    assert [e["field"] for e in bad["error"]["errors"]] == ["template"]
    for accepted, item in ((first, items[0]), (last, items[2])):
        assert (await api.notification(accepted["id"]))["event_id"] == item["event_id"]


async def test_batch_item_that_is_not_an_object_fails_alone(api: Api) -> None:
    user_id, _ = await _customer(api)
    template = await api.put_template(ORDER_SHIPPED)
    good = {"event_id": unique("evt"), "user_id": user_id, "template": template}

    response = await api.http.post(
        "/v1/notifications/batch", json={"notifications": ["not an object", good]}
    )

    assert response.status_code == 200, response.text
    bad, accepted = response.json()["results"]
    assert (bad["status"], bad["error"]["status"]) == ("rejected", 422)
    assert accepted["status"] == "accepted"


async def test_template_that_does_not_compile_names_field_and_line_and_is_not_stored(
    api: Api,
) -> None:
    template_id = unique("tpl")
    broken = {
        "channels": {
            "email": {"subject": "Hello\n{{ payload.order_id ", "html": "<p>fine</p>"},
        }
    }

    response = await api.http.put(f"/v1/templates/{template_id}", json=broken)

    document = problem(response, 422)
    (error,) = document["errors"]
    assert error["field"] == "channels.email.subject"
    assert "line 2" in error["message"]
    assert (await api.http.get(f"/v1/templates/{template_id}")).status_code == 404


async def test_payload_missing_a_template_variable_fails_the_delivery_and_sends_nothing(
    api: Api,
) -> None:
    user_id, email = await _customer(api)
    template = await api.put_template({"channels": {"email": ORDER_SHIPPED["channels"]["email"]}})

    response = await api.send(user_id=user_id, template=template, payload={"order": "A-1"})

    assert response.status_code == 202, response.text
    (delivery,) = (await api.settled(response.json()["id"]))["deliveries"]
    assert delivery["status"] == "failed"
    assert "payload.order_id" in delivery["reason"]
    assert await api.sandbox(to=email) == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/notifications", {"event_id": "e"}, 422),
        ("PUT", "/v1/users/someone", {"email": "not-an-address"}, 422),
        ("GET", "/v1/users/nobody-here", None, 404),
        ("GET", "/v1/templates/nothing-here", None, 404),
        ("GET", "/v1/no-such-route", None, 404),
    ],
)
async def test_every_error_body_is_a_problem_document(
    api: Api, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    response = await api.http.request(method, path, json=body)

    document = problem(response, status)
    assert set(document) >= {"type", "title", "status", "detail", "errors"}
    assert document["status"] == status
    assert document["type"].startswith("http") and document["title"] and document["detail"]
    assert isinstance(document["errors"], list)
