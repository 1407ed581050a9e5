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
from frontdesk.core.models import AuditType, DeliveryStatus, NotificationStatus
from frontdesk.errors import NotFound

router = APIRouter(route_class=ConsoleRoute)

# How many accepted notifications one search page reads before filtering by template and
# status: the store finds notifications by user and time only (see _matching).
SCAN_PER_PAGE = 200
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
            after_seq=int(cursor) if cursor.isdigit() else None,
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
    after_seq: int | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Notifications accepted for the user in the time range, oldest first, then kept if they
    match the template and status. The audit's acceptance entries are the only index the store
    offers by user and time; the next page continues after the last entry read."""
    accepted = await services.store.search_audit(
        user_id=user_id,
        since=since,
        until=until,
        type_=AuditType.ACCEPTED.value,
        after_seq=after_seq,
        limit=SCAN_PER_PAGE,
    )
    found = []
    for entry in accepted:
        notification = notification_view(
            await services.store.get_notification(entry["notification_id"])
        )
        if template and notification["template"] != template:
            continue
        if status and not _has_status(notification, status):
            continue
        found.append(notification)
    next_cursor = str(accepted[-1]["seq"]) if len(accepted) == SCAN_PER_PAGE else None
    return found, next_cursor


def _has_status(notification: dict[str, Any], status: str) -> bool:
    """A notification's own status (accepted, processing, completed), or any of its
    deliveries' (so "dead" finds every notification with a dead delivery)."""
    return notification["status"] == status or any(
        delivery["status"] == status for delivery in notification["deliveries"]
    )


def _utc(local: str) -> datetime | None:
    """A datetime-local input's value, read as UTC (the console shows every time in UTC)."""
    if not local:
        return None
    try:
        parsed = datetime.fromisoformat(local)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
