"""The OpenAPI document describes what frontdesk answers, so that a client generated from it is
right: problem documents for errors, the real success codes and bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import Api, unique

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello {{ user.id }}"}}}
# Called by providers or from a link in a message, never with an API key.
UNAUTHENTICATED_PREFIXES = ("/v1/inbound/", "/v1/unsubscribe")


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    response = await api.http.get("/openapi.json")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _body_schema(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return _schema(document, response["content"]["application/json"]["schema"]["$ref"])


async def test_problem_schema_has_the_fields_of_the_problem_documents_sent(
    api: Api, document: dict[str, Any]
) -> None:
    response = await api.http.put(f"/v1/users/{unique('user')}", json={"email": "not-an-address"})

    assert response.status_code == 422, response.text
    sent = response.json()
    problem = _schema(document, PROBLEM_REF)
    assert set(problem["properties"]) == set(problem["required"]) == set(sent)
    field_error = _schema(document, problem["properties"]["errors"]["items"]["$ref"])
    assert set(field_error["properties"]) == set(field_error["required"]) == set(sent["errors"][0])


async def test_every_error_answer_is_described_as_a_problem_document(
    document: dict[str, Any],
) -> None:
    described = {
        (method, path, status): response["content"]
        for method, path, operation in _operations(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }

    assert described
    assert {
        where: content
        for where, content in described.items()
        if content != {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    } == {}


async def test_fastapis_own_validation_error_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in document["components"]["schemas"]


async def test_every_operation_with_input_declares_422(document: dict[str, Any]) -> None:
    missing = [
        (method, path)
        for method, path, operation in _operations(document)
        if (operation.get("parameters") or operation.get("requestBody"))
        and "422" not in operation["responses"]
    ]

    assert missing == []


async def test_authenticated_operations_declare_401_and_403(document: dict[str, Any]) -> None:
    missing = [
        (method, path)
        for method, path, operation in _operations(document)
        if path.startswith("/v1/")
        and not path.startswith(UNAUTHENTICATED_PREFIXES)
        and not {"401", "403"} <= set(operation["responses"])
    ]

    assert missing == []


async def test_sending_a_notification_declares_202_200_409_and_413(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/v1/notifications"]["post"]["responses"]

    assert {"202", "200", "400", "401", "403", "409", "413", "422"} <= set(responses)
    for status in ("409", "413"):
        assert responses[status]["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    accepted, repeat = (_body_schema(document, responses[s]) for s in ("202", "200"))
    assert accepted == repeat
    assert set(accepted["properties"]) == {"id", "status", "duplicate"}


async def test_the_batch_declares_200_with_one_result_per_item_and_413(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/v1/notifications/batch"]["post"]["responses"]

    assert "202" not in responses
    assert {"200", "413"} <= set(responses)
    results = _body_schema(document, responses["200"])["properties"]["results"]["items"]
    rejected = _schema(document, results["discriminator"]["mapping"]["rejected"])
    assert rejected["properties"]["error"] == {"$ref": PROBLEM_REF}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/notifications/{notification_id}"),
        ("GET", "/v1/users/{user_id}"),
        ("DELETE", "/v1/users/{user_id}/devices/{token}"),
        ("GET", "/v1/templates/{template_id}"),
        ("POST", "/v1/users/{user_id}/inbox/{item_id}/read"),
        ("POST", "/v1/dead-letters/{delivery_id}/redrive"),
    ],
)
async def test_operations_that_look_something_up_declare_404(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert "404" in document["paths"][path][method.lower()]["responses"]


async def test_accepted_notification_and_its_record_are_answered_as_described(
    api: Api, document: dict[str, Any]
) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)
    sent = await api.send(user_id=user_id, template=template)

    assert sent.status_code == 202, sent.text
    notification = await api.settled(sent.json()["id"])
    accepted = document["paths"]["/v1/notifications"]["post"]["responses"]["202"]
    assert set(sent.json()) == set(_body_schema(document, accepted)["properties"])
    described = document["paths"]["/v1/notifications/{notification_id}"]["get"]["responses"]
    notification_schema = _body_schema(document, described["200"])
    delivery_schema = _schema(
        document, notification_schema["properties"]["deliveries"]["items"]["$ref"]
    )
    assert set(notification) == set(notification_schema["properties"])
    assert set(notification["deliveries"][0]) == set(delivery_schema["properties"])
