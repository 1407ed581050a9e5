"""The console's notification search and a notification's page: its deliveries and the complete
timeline, every step with the reason the pipeline recorded for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from frontdesk.api.pages.console_session import (
    ConsoleRoute,
    OperatorSession,
    operator,
    page_context,
)
from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import audit_view, notification_view
from frontdesk.core.models import DeliveryStatus, NotificationStatus
from frontdesk.errors import NotFound

router = APIRouter(route_class=ConsoleRoute)

PAGE = 50
NOTIFICATION_STATUSES = [status.value for status in NotificationStatus]
DELIVERY_STATUSES = [status.value for status in DeliveryStatus]


@router.get("/console/notifications", response_class=HTMLResponse)
async def search_notifications(
    request: Request,
    user_id: str = "",
    template: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    criteria = {
        "user_id": user_id.strip(),
        "template": template.strip(),
        "status": status,
        "since": since,
        "until": until,
    }
    problems = []
    since_at, until_at = _utc(since), _utc(until)
    if since and since_at is None:
        problems.append("“From” is not a date and time.")
    if until and until_at is None:
        problems.append("“Until” is not a date and time.")
    searched = any(criteria.values()) or bool(cursor)
    found: list[dict[str, Any]] = []
    next_cursor = None
    if searched and not problems:
        found, next_cursor = await _matching(
            services,
            user_id=criteria["user_id"] or None,
            template=criteria["template"] or None,
            status=status or None,
            since=since_at,
            until=until_at,
            cursor=cursor,
        )
    return templates.TemplateResponse(
        request,
        "console/notifications.html",
        page_context(
            request,
            session,
            section="notifications",
            criteria=criteria,
            notification_statuses=NOTIFICATION_STATUSES,
            delivery_statuses=DELIVERY_STATUSES,
            problems=problems,
            searched=searched,
            notifications=found,
            next_cursor=next_cursor,
        ),
    )


@router.get("/console/notifications/{notification_id}", response_class=HTMLResponse)
async def notification_page(
    request: Request,
    notification_id: str,
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    try:
        found = await services.store.get_notification(notification_id)
    except NotFound:
        return templates.TemplateResponse(
            request,
            "console/not_found.html",
            page_context(request, session, section="notifications", what=notification_id),
            status_code=404,
        )
    notification = notification_view(found)
    timeline = [
        audit_view(entry) for entry in await services.store.audit_for_notification(notification_id)
    ]
    return templates.TemplateResponse(
        request,
        "console/notification.html",
        page_context(
            request,
            session,
            section="notifications",
            notification=notification,
            timeline=timeline,
        ),
    )


async def _matching(
    services: ApiServices,
    *,
    user_id: str | None,
    template: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of matching notifications, newest first; the cursor is the last one shown."""
    before = _position(cursor)
    found = await services.store.search_notifications(
        user_id=user_id,
        template_id=template,
        status=status,
        since=since,
        until=until,
        before=before,
        limit=PAGE,
    )
    notifications = [notification_view(row) for row in found]
    last = found[-1]["notification"] if len(found) == PAGE else None
    return notifications, f"{last['created_at'].isoformat()}|{last['id']}" if last else None


def _position(cursor: str) -> tuple[datetime, str] | None:
    moment, _, notification_id = cursor.partition("|")
    try:
        return (datetime.fromisoformat(moment), notification_id) if notification_id else None
    except ValueError:
        return None


def _utc(local: str) -> datetime | None:
    """A datetime-local input's value, read as UTC (the console shows every time in UTC)."""
    if not local:
        return None
    try:
        parsed = datetime.fromisoformat(local)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
