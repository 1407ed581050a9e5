"""API keys made, listed and revoked by an admin, through the API and the command line. A key
is shown once; a revoked key is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.cli import frontdesk_cli
from tests.support.client import Api, unique

GREETING = {"channels": {"in_app": {"title": "Hello", "body": "Hello"}}}


def _as(base_url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


async def _new_key(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.http.post("/v1/keys", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_new_key_is_shown_once_and_works_for_its_scope(api: Api, base_url: str) -> None:
    user_id = await api.put_user()
    template = await api.put_template(GREETING)

    created = await _new_key(api, scopes=["ingest"], name=unique("checkout service"))

    assert created["key"].startswith("fd_") and created["id"].startswith("key_")
    assert created["scopes"] == ["ingest"] and created["revoked_at"] is None
    async with _as(base_url, created["key"]) as ingest:
        sent = await ingest.post(
            "/v1/notifications",
            json={"user_id": user_id, "template": template, "event_id": unique("order")},
        )
        assert sent.status_code == 202, sent.text
        assert (await ingest.get("/v1/keys")).status_code == 403, "ingest is not admin"
    listed = {key["id"]: key for key in (await api.http.get("/v1/keys")).json()["items"]}
    assert listed[created["id"]]["name"] == created["name"]
    assert "key" not in listed[created["id"]], "a key is shown only when it is made"


async def test_a_revoked_key_is_refused(api: Api, base_url: str) -> None:
    created = await _new_key(api, scopes=["admin"])
    async with _as(base_url, created["key"]) as revoked:
        assert (await revoked.get("/v1/keys")).status_code == 200

        response = await api.http.delete(f"/v1/keys/{created['id']}")

        assert response.status_code == 200, response.text
        assert response.json()["revoked_at"] is not None
        refused = await revoked.get("/v1/keys")
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]


async def test_revoking_twice_keeps_the_first_revocation(api: Api) -> None:
    created = await _new_key(api, scopes=["ingest"])
    first = await api.http.delete(f"/v1/keys/{created['id']}")

    second = await api.http.delete(f"/v1/keys/{created['id']}")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first.json()["revoked_at"]


async def test_revoking_an_unknown_key_is_a_404_naming_it(api: Api) -> None:
    response = await api.http.delete("/v1/keys/key_unknown")

    assert response.status_code == 404
    assert "key_unknown" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"scopes": []}, "scopes"), ({"scopes": ["root"]}, "scopes.0"), ({}, "scopes")],
)
async def test_a_key_with_bad_scopes_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    before = len((await api.http.get("/v1/keys")).json()["items"])

    response = await api.http.post("/v1/keys", json=body)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert len((await api.http.get("/v1/keys")).json()["items"]) == before


async def test_the_cli_lists_keys_without_their_secret_and_revokes_one(
    api: Api, database_url: str
) -> None:
    name = unique("nightly-export")
    created = await _new_key(api, scopes=["ingest"], name=name)

    code, listing, _ = await frontdesk_cli(database_url, "keys", "list")
    revoke_code, revoked, _ = await frontdesk_cli(database_url, "keys", "revoke", created["id"])

    assert code == 0
    (row,) = [line for line in listing.splitlines() if created["id"] in line]
    assert name in row and "ingest" in row
    assert created["key"] not in listing
    assert revoke_code == 0 and f"revoked {created['id']} ({name})" in revoked
    listed = {key["id"]: key for key in (await api.http.get("/v1/keys")).json()["items"]}
    assert listed[created["id"]]["revoked_at"] is not None


async def test_the_cli_refuses_to_revoke_an_unknown_key_naming_it(database_url: str) -> None:
    code, _, stderr = await frontdesk_cli(database_url, "keys", "revoke", "key_nobody")

    assert code == 2
    assert "key_nobody" in stderr
