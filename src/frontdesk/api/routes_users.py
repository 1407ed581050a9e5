"""Users (recipients), their devices, GDPR export and erasure, inbox tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from frontdesk.api.auth import ADMIN, issue_user_token, require
from frontdesk.api.problems import AUTHENTICATION_PROBLEMS, BODY_PROBLEMS, INPUT_PROBLEMS, NOT_FOUND
from frontdesk.api.schemas import DeviceIn, Id, UserIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import (
    InboxToken,
    UserView,
    audit_view,
    inbox_item_view,
    user_view,
)
from frontdesk.core.rules import addresses
from frontdesk.core.times import rfc3339
from frontdesk.errors import NotFound

router = APIRouter(
    prefix="/v1/users",
    tags=["users"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)


@router.put("/{user_id}", response_model=UserView, responses=BODY_PROBLEMS)
async def put_user(
    user_id: Id, body: UserIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Create or replace a user."""
    stored = await services.store.put_user(user_id, body.model_dump(mode="json"))
    return user_view(stored)


@router.get("/{user_id}", response_model=UserView, responses=NOT_FOUND)
async def get_user(user_id: Id, services: ApiServices = Depends(get_services)) -> dict[str, Any]:
    return user_view(await services.store.get_user_record(user_id))


@router.delete("/{user_id}", status_code=204, responses=NOT_FOUND)
async def erase_user(user_id: Id, services: ApiServices = Depends(get_services)) -> Response:
    """Erase personal data: contact points, devices, inbox; the audit stays, pseudonymised."""
    await services.store.erase_user(user_id)
    return Response(status_code=204)


@router.get("/{user_id}/export", responses=NOT_FOUND)
async def export_user(user_id: Id, services: ApiServices = Depends(get_services)) -> dict[str, Any]:
    """Everything held about the user."""
    user = user_view(await services.store.get_user_record(user_id))
    items, _ = await services.store.list_inbox(user_id, "all", None, 10_000)
    audit = await services.store.search_audit(
        user_id=user_id, since=None, until=None, type_=None, after_seq=None, limit=10_000
    )
    preferences = await services.store.get_preferences(user_id)
    stored_user = (await services.store.get_users([user_id]))[user_id]
    suppressed = await services.store.suppressed(addresses(stored_user))
    history = await services.store.user_history(user_id)
    return {
        "user": user,
        "preferences": preferences.to_json(),
        "suppressions": [{"channel": c, "address": a} for c, a in sorted(suppressed)],
        "notifications": [
            {
                "id": n["id"],
                "template": n["template_id"],
                "event_id": n["event_id"],
                "created_at": rfc3339(n["created_at"]),
                "deliveries": [
                    {
                        "id": d["id"],
                        "channel": d["channel"],
                        "status": d["status"],
                        "reason": d["reason"],
                        "updated_at": rfc3339(d["updated_at"]),
                    }
                    for d in n["deliveries"]
                ],
            }
            for n in history
        ],
        "inbox": [inbox_item_view(item) for item in items],
        "audit": [audit_view(entry) for entry in audit],
    }


@router.post("/{user_id}/devices", status_code=201, responses={**BODY_PROBLEMS, **NOT_FOUND})
async def add_device(
    user_id: Id, body: DeviceIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    await services.store.get_user_record(user_id)
    await services.store.add_device(user_id, body.token, body.provider, body.replaces)
    return {"token": body.token, "provider": body.provider}


# ":path": a token may hold slashes, and the server decodes %2F before routing. The token is
# the rest of the path, so no other route may lie under .../devices/.
@router.delete("/{user_id}/devices/{token:path}", status_code=204, responses=NOT_FOUND)
async def remove_device(
    user_id: Id, token: str, services: ApiServices = Depends(get_services)
) -> Response:
    """Forget one of the user's devices. URL-encode the token: a webpush token is the
    PushSubscription JSON, whose endpoint URL holds slashes."""
    if not await services.store.remove_device(user_id, token):
        raise NotFound(f"user {user_id!r} has no such device")
    return Response(status_code=204)


@router.post("/{user_id}/inbox-token", response_model=InboxToken, responses=NOT_FOUND)
async def create_inbox_token(
    user_id: Id, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """A short-lived token a browser may use for this user's inbox only."""
    await services.store.get_user_record(user_id)
    token, expires_at = issue_user_token(services, user_id)
    return {"token": token, "expires_at": expires_at}
