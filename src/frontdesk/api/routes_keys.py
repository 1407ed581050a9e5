"""API keys: made, listed and revoked by an admin. A key is shown once, when it is made; only
its hash is kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from frontdesk.api.auth import ADMIN, ApiKeyCache, require
from frontdesk.api.problems import (
    AUTHENTICATION_PROBLEMS,
    BODY_PROBLEMS,
    INPUT_PROBLEMS,
    NOT_FOUND,
)
from frontdesk.api.schemas import ApiKeyIn, Id
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import ApiKeys, ApiKeyView, NewApiKey, api_key_view
from frontdesk.logs import get_logger

log = get_logger(__name__)

router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)


@router.get("", response_model=ApiKeys)
async def list_keys(services: ApiServices = Depends(get_services)) -> dict[str, Any]:
    """Every key, oldest first, revoked ones too; never a key itself."""
    return {"items": [api_key_view(key) for key in await services.store.list_api_keys()]}


@router.post("", status_code=201, response_model=NewApiKey, responses=BODY_PROBLEMS)
async def create_key(
    body: ApiKeyIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    key_id, key = await services.store.create_api_key(sorted(set(body.scopes)), body.name)
    log.info("api key created", key_id=key_id, scopes=sorted(set(body.scopes)))
    return {**api_key_view(await services.store.get_api_key(key_id)), "key": key}


@router.delete("/{key_id}", response_model=ApiKeyView, responses=NOT_FOUND)
async def revoke_key(
    key_id: Id, request: Request, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Refused at once by this process; other processes serving the API refuse it once their
    memory of the keys they checked runs out (KEY_MEMORY_SECONDS, 30 s)."""
    revoked = await services.store.revoke_api_key(key_id)
    cache: ApiKeyCache = request.app.state.api_keys
    cache.forget()
    log.info("api key revoked", key_id=key_id)
    return api_key_view(revoked)
