"""A user's preferences (admin, or the user's own token) and the suppression list (admin)."""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse

from frontdesk.api.auth import ADMIN, Principal, require, require_inbox_access
from frontdesk.api.problems import (
    AUTHENTICATION_PROBLEMS,
    BODY_PROBLEMS,
    INPUT_PROBLEMS,
    NOT_FOUND,
    problem,
)
from frontdesk.api.schemas import PreferencesIn, SuppressionIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.models import Actor, AuditType, Channel, Preferences
from frontdesk.core.times import rfc3339
from frontdesk.core.tokens import InvalidToken
from frontdesk.errors import Forbidden, InvalidInput, NotFound

preferences = APIRouter(
    prefix="/v1/users/{user_id}/preferences",
    tags=["preferences"],
    dependencies=[Depends(require_inbox_access)],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS, **NOT_FOUND},
)
suppressions = APIRouter(
    prefix="/v1/suppressions",
    tags=["suppressions"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)


@preferences.get("")
async def get_preferences(
    user_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    return (await services.store.get_preferences(user_id)).to_json()


@preferences.put("", responses=BODY_PROBLEMS)
async def put_preferences(
    user_id: str,
    body: PreferencesIn,
    # The router's own check, answered from the request's dependency cache.
    principal: Principal = Depends(require_inbox_access),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """Replace the user's choices. The most specific rule wins: template, then category, then
    channel. Saving a category's choices again also lifts an unsubscribe from it."""
    chosen = Preferences(
        channels={c.value: v for c, v in body.channels.items()},
        categories={
            k.value: {c.value: v for c, v in d.items()} for k, d in body.categories.items()
        },
        templates={k: {c.value: v for c, v in d.items()} for k, d in body.templates.items()},
    )

    def change(stored: Preferences) -> Preferences:
        chosen_again = {f"{c}.{ch}" for c, choices in chosen.categories.items() for ch in choices}
        return replace(chosen, unsubscribed=stored.unsubscribed - chosen_again)

    actor = Actor.USER if principal.user_id == user_id else Actor.OPERATOR
    return (await services.store.put_preferences(user_id, change, actor)).to_json()


@suppressions.put("/{channel}/{address:path}", responses=BODY_PROBLEMS)
async def suppress(
    channel: Channel,
    address: str,
    body: SuppressionIn | None = None,
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """Never send to this address on this channel again (until removed)."""
    if channel in (Channel.IN_APP, Channel.WEBHOOK):
        raise InvalidInput.for_field("channel", "only email, sms and push addresses are suppressed")
    reason = body.reason if body else "added by an operator"
    return _suppression_view(await services.store.put_suppression(channel.value, address, reason))


@suppressions.delete("/{channel}/{address:path}", status_code=204, responses=NOT_FOUND)
async def unsuppress(
    channel: Channel, address: str, services: ApiServices = Depends(get_services)
) -> Response:
    if not await services.store.delete_suppression(channel.value, address):
        raise NotFound(f"{address!r} is not on the {channel.value} suppression list")
    return Response(status_code=204)


@suppressions.get("")
async def list_suppressions(
    channel: Channel | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    after = None
    if cursor:
        first, separator, second = cursor.partition(":")
        if not separator:
            raise InvalidInput.for_field("cursor", "not a cursor returned by this endpoint")
        after = (first, second)
    rows = await services.store.list_suppressions(channel.value if channel else None, after, limit)
    last = rows[-1] if len(rows) == limit else None
    return {
        "items": [_suppression_view(row) for row in rows],
        "next_cursor": f"{last['channel']}:{last['address']}" if last else None,
    }


def _suppression_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel": row["channel"],
        "address": row["address"],
        "reason": row["reason"],
        "created_at": rfc3339(row["created_at"]),
    }


unsubscribe = APIRouter(
    prefix="/v1/unsubscribe",
    tags=["compliance"],
    responses={
        403: problem("The link is forged, altered or expired; nothing changed"),
        **INPUT_PROBLEMS,
    },
)


@unsubscribe.post("", responses=NOT_FOUND)
async def one_click_unsubscribe(
    token: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """RFC 8058 one-click unsubscribe: the signed token alone opts the user out of the
    category on the channel at once, no login. A forged, altered or expired token changes
    nothing."""
    category, channel, user_id = _unsubscribe_subject(services, token)
    pair = f"{category}.{channel}"
    await services.store.put_preferences(
        user_id,
        lambda stored: replace(stored, unsubscribed=stored.unsubscribed | {pair}),
        Actor.USER,
        type_=AuditType.UNSUBSCRIBED,
        reason=f"one-click unsubscribe from {category} on {channel}",
    )
    return {"user_id": user_id, "category": category, "channel": channel, "unsubscribed": True}


@unsubscribe.get("", response_class=HTMLResponse)
async def unsubscribe_page(token: str, services: ApiServices = Depends(get_services)) -> str:
    """A confirmation page. Opening the link changes nothing (mail scanners open links); the
    button POSTs, as RFC 8058 asks."""
    category, channel, _ = _unsubscribe_subject(services, token)
    action = html.escape(f"/v1/unsubscribe?token={token}", quote=True)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width'><title>Unsubscribe</title>"
        f"<h1>Unsubscribe from {html.escape(category)} {html.escape(channel)}?</h1>"
        f"<form method=post action='{action}'><button>Unsubscribe</button></form></html>"
    )


def _unsubscribe_subject(services: ApiServices, token: str) -> tuple[str, str, str]:
    try:
        return services.links.unsubscribe_subject(token, services.clock.now())
    except InvalidToken as error:
        raise Forbidden(f"this unsubscribe link is not valid: {error}") from None
