"""Listing templates: the latest version of each, by template id, a page at a time, filtered by
category; through the API and the command line."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.cli import frontdesk_cli
from tests.support.client import Api, unique

WELCOME: dict[str, Any] = {
    "category": "transactional",
    "channels": {
        "in_app": {"title": "Welcome", "body": "Hello {{ user.name }}"},
        "sms": {"text": "Welcome!"},
    },
    "locales": {"fr": {"in_app": {"title": "Bienvenue"}}},
}
PROMOTION: dict[str, Any] = {
    "category": "marketing",
    "channels": {"in_app": {"title": "Sale", "body": "Everything half price"}},
}


async def _every_template(api: Api, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every listed template, following next_cursor to the end, and how many pages it took."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        response = await api.http.get(
            "/v1/templates", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


def _of(items: list[dict[str, Any]], template_ids: list[str]) -> list[dict[str, Any]]:
    return [item for item in items if item["template_id"] in template_ids]


async def _three_templates(api: Api) -> list[str]:
    """Ids a, b, c sharing a fresh prefix (so they sort together, in that order); b has two
    versions, its second with another channel."""
    prefix = unique("listed")
    first, second, third = f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    await api.put_template(WELCOME, first)
    await api.put_template(WELCOME, second)
    await api.put_template({**PROMOTION, "category": "transactional"}, second)
    await api.put_template(PROMOTION, third)
    return [first, second, third]


async def test_the_list_shows_each_template_once_at_its_latest_version(api: Api) -> None:
    first, second, third = await _three_templates(api)

    items, _ = await _every_template(api)

    assert [item["template_id"] for item in _of(items, [first, second, third])] == [
        first,
        second,
        third,
    ]
    listed = {item["template_id"]: item for item in items}
    assert [listed[t]["version"] for t in (first, second, third)] == [1, 2, 1]
    assert listed[first]["channels"] == ["in_app", "sms"]
    assert listed[first]["locales"] == ["fr"]
    assert listed[second]["channels"] == ["in_app"]
    assert listed[third]["category"] == "marketing"
    latest = await api.http.get(f"/v1/templates/{second}")
    assert listed[second]["etag"] == latest.headers["ETag"]
    assert listed[second]["created_at"] == latest.json()["created_at"]


async def test_a_small_limit_pages_through_every_template_in_id_order(api: Api) -> None:
    mine = await _three_templates(api)
    everything, _ = await _every_template(api, limit=200)

    items, pages = await _every_template(api, limit=2)

    assert [item["template_id"] for item in _of(items, mine)] == mine
    assert [item["template_id"] for item in items] == [i["template_id"] for i in everything]
    # A full last page still has a next_cursor; the page after it is empty.
    assert pages == len(items) // 2 + 1


async def test_category_keeps_templates_whose_latest_version_is_in_it(api: Api) -> None:
    first, once_marketing, marketing = await _three_templates(api)
    await api.put_template(PROMOTION, first)  # transactional first, marketing now

    items, _ = await _every_template(api, category="marketing")

    assert {item["category"] for item in items} == {"marketing"}
    assert [item["template_id"] for item in _of(items, [first, once_marketing, marketing])] == [
        first,
        marketing,
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", "0"),
        ("limit", "201"),
        ("limit", "many"),
        ("category", "promotional"),
        ("cursor", "x" * 201),
    ],
)
async def test_a_bad_query_parameter_is_a_422_naming_it(api: Api, field: str, value: str) -> None:
    response = await api.http.get("/v1/templates", params={field: value})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_listing_needs_an_admin_key(base_url: str, frontdesk: tuple[Any, str]) -> None:
    instance, _ = frontdesk
    _, ingest_key = await instance.store.create_api_key(["ingest"])

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous:
        without_key = await anonymous.get("/v1/templates")
        with_ingest_key = await anonymous.get(
            "/v1/templates", headers={"Authorization": f"Bearer {ingest_key}"}
        )

    assert (without_key.status_code, with_ingest_key.status_code) == (401, 403)


async def _cli(database_url: str, *arguments: str) -> tuple[int, str, str]:
    return await frontdesk_cli(database_url, "templates", "list", *arguments)


def _rows(table: str) -> dict[str, list[str]]:
    """The table's rows by template id: the cells of each line that shows a version."""
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines()]
    return {row[0]: row[1:] for row in cells if len(row) > 1 and row[1].isdigit()}


async def test_the_cli_lists_each_template_at_its_latest_version(
    api: Api, database_url: str
) -> None:
    first, second, _ = await _three_templates(api)

    returncode, stdout, stderr = await _cli(database_url)

    assert returncode == 0, stderr
    rows = _rows(stdout)
    assert rows[first][:3] == ["1", "transactional", "in_app, sms"]
    assert rows[second][:3] == ["2", "transactional", "in_app"]


async def test_the_cli_lists_only_the_category_asked_for(api: Api, database_url: str) -> None:
    first, _, marketing = await _three_templates(api)

    returncode, stdout, stderr = await _cli(database_url, "--category", "marketing")

    assert returncode == 0, stderr
    rows = _rows(stdout)
    assert marketing in rows
    assert first not in rows
    assert {row[1] for row in rows.values()} == {"marketing"}


async def test_the_cli_refuses_an_unknown_category_naming_the_option(database_url: str) -> None:
    returncode, _, stderr = await _cli(database_url, "--category", "promotional")

    assert returncode == 2
    assert "--category" in stderr
