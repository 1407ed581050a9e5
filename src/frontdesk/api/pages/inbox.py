"""The embeddable inbox's demo page: a stand-in host application with <frontdesk-inbox>
signed in as one user, for operators to see the component working against their own data."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from frontdesk.api.auth import ADMIN, issue_user_token, require
from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import inbox_item_view

router = APIRouter(tags=["pages"], include_in_schema=False)
# What the page lists for a browser without JavaScript, before the component takes over.
_FALLBACK_ITEMS = 20


@router.get("/demo/inbox", response_class=HTMLResponse, dependencies=[Depends(require(ADMIN))])
async def inbox_demo(
    request: Request,
    user_id: str = Query(min_length=1, max_length=200),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    user = await services.store.get_user_record(user_id)
    # Issued here, by the server, so the admin key never reaches the page's script.
    token, expires_at = issue_user_token(services, user_id)
    items, unread = await services.store.list_inbox(user_id, "all", None, _FALLBACK_ITEMS)
    response = templates.TemplateResponse(
        request,
        "inbox/demo.html",
        {
            "api_base": str(request.base_url).rstrip("/"),
            "user_id": user_id,
            "locale": user.get("locale") or "",
            "user_token": token,
            "token_expires_at": expires_at,
            "items": [inbox_item_view(item) for item in items if item["archived_at"] is None],
            "unread_count": unread,
        },
    )
    # The page carries a user token: no cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response
