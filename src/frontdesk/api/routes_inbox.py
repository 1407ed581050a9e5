"""The in-app inbox: list, read, archive, read-all, and a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from frontdesk.api.auth import require_inbox_access
from frontdesk.api.problems import AUTHENTICATION_PROBLEMS, INPUT_PROBLEMS, NOT_FOUND
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import InboxItemView, InboxPage, inbox_item_view
from frontdesk.core.models import Actor
from frontdesk.ids import Prefix, has_prefix

router = APIRouter(
    prefix="/v1/users/{user_id}/inbox",
    tags=["inbox"],
    dependencies=[Depends(require_inbox_access)],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)
# Other processes (separate workers) write inbox items too; they are picked up at this pace.
_POLL_SECONDS = 2.0
_KEEPALIVE_SECONDS = 15.0
# The stream's position before a user's first item: it sorts before every inbox item id.
_BEFORE_FIRST_ITEM = f"{Prefix.INBOX_ITEM}_0"


@router.get("", response_model=InboxPage)
async def list_inbox(
    user_id: str,
    status: str = Query("all", pattern="^(unread|read|archived|all)$"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    items, unread = await services.store.list_inbox(user_id, status, cursor, limit)
    return {
        "items": [inbox_item_view(item) for item in items],
        "unread_count": unread,
        "next_cursor": items[-1]["id"] if len(items) == limit else None,
    }


@router.post("/read-all")
async def read_all(user_id: str, services: ApiServices = Depends(get_services)) -> dict[str, Any]:
    items = await services.store.mark_inbox_items(user_id, None, archive=False, actor=Actor.USER)
    services.feed.publish(user_id)
    return {"read": len(items), "unread_count": await services.store.unread_count(user_id)}


@router.post("/{item_id}/read", response_model=InboxItemView, responses=NOT_FOUND)
async def read_item(
    user_id: str, item_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    (item,) = await services.store.mark_inbox_items(
        user_id, item_id, archive=False, actor=Actor.USER
    )
    services.feed.publish(user_id)
    return inbox_item_view(item)


@router.post("/{item_id}/archive", response_model=InboxItemView, responses=NOT_FOUND)
async def archive_item(
    user_id: str, item_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    (item,) = await services.store.mark_inbox_items(
        user_id, item_id, archive=True, actor=Actor.USER
    )
    services.feed.publish(user_id)
    return inbox_item_view(item)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream_inbox(
    user_id: str, request: Request, services: ApiServices = Depends(get_services)
) -> StreamingResponse:
    """One ``inbox_item`` event per new item and one ``unread_count`` event per change.

    Every event's SSE id is the stream's position: the newest item id sent so far. A client
    reconnecting with it as ``Last-Event-ID`` (EventSource does so itself; a client that cannot
    set headers may pass ``last_event_id``) receives every item created while it was away."""
    resume_from = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    return StreamingResponse(
        _events(services, user_id, _position(resume_from), request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    services: ApiServices, user_id: str, last_id: str | None, request: Request
) -> AsyncIterator[str]:
    store = services.store
    if last_id is None:
        newest, _ = await store.list_inbox(user_id, "all", None, 1)
        last_id = newest[0]["id"] if newest else _BEFORE_FIRST_ITEM
    unread = await store.unread_count(user_id)
    yield _event("unread_count", {"unread_count": unread}, position=last_id)
    changes = services.feed.subscribe(user_id)
    waiting: asyncio.Task[Any] | None = None
    quiet_for = 0.0
    try:
        while not await request.is_disconnected():
            waiting = waiting or asyncio.ensure_future(anext(changes))
            done, _ = await asyncio.wait({waiting}, timeout=_POLL_SECONDS)
            if done:
                waiting = None
            for item in await store.inbox_items_after(user_id, last_id):
                last_id = item["id"]
                yield _event("inbox_item", inbox_item_view(item), position=last_id)
            count = await store.unread_count(user_id)
            if count != unread:
                unread = count
                yield _event("unread_count", {"unread_count": unread}, position=last_id)
                quiet_for = 0.0
            elif not done:
                quiet_for += _POLL_SECONDS
                if quiet_for >= _KEEPALIVE_SECONDS:
                    quiet_for = 0.0
                    yield ": keepalive\n\n"
    finally:
        if waiting is not None:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await waiting
        await changes.aclose()  # type: ignore[attr-defined]


def _position(resume_from: str | None) -> str | None:
    """The client's Last-Event-ID if it is a position this stream gave out; anything else (it
    is echoed into the stream, so it must not carry a line break) starts from now."""
    if resume_from == _BEFORE_FIRST_ITEM:
        return resume_from
    if resume_from is not None and has_prefix(resume_from, Prefix.INBOX_ITEM):
        return resume_from
    return None


def _event(name: str, data: dict[str, Any], *, position: str) -> str:
    return f"event: {name}\nid: {position}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
