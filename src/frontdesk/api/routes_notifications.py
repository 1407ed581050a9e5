"""Ingest (single and batch), reading a notification back, and the audit trail."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from frontdesk.api.auth import ADMIN, INGEST, Principal, authenticate, require
from frontdesk.api.problems import (
    AUTHENTICATION_PROBLEMS,
    BODY_PROBLEMS,
    INPUT_PROBLEMS,
    NOT_FOUND,
    problem,
    problem_body,
    validation_error,
)
from frontdesk.api.schemas import BatchIn, NotificationIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import (
    AuditEntries,
    AuditPage,
    BatchResults,
    NotificationAccepted,
    NotificationView,
    audit_view,
    notification_view,
)
from frontdesk.errors import FrontdeskError, InvalidInput, RateLimited, TooLarge
from frontdesk.pipeline.ingest import IngestResult

ingest = APIRouter(
    tags=["notifications"],
    dependencies=[Depends(require(INGEST))],
    responses={
        **AUTHENTICATION_PROBLEMS,
        **BODY_PROBLEMS,
        429: problem(
            "Over the API key's allowance (server.ingest_rate_per_second): nothing was "
            "accepted; the Retry-After header says in how many seconds it would be"
        ),
    },
)
admin = APIRouter(
    tags=["notifications"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)
MAX_BATCH = 1000


@ingest.post(
    "/v1/notifications",
    status_code=202,
    response_model=NotificationAccepted,
    response_description="Accepted: the notification is durably stored",
    responses={
        200: {
            "model": NotificationAccepted,
            "description": "A repeat of the same user, template and event_id within the dedupe "
            "window: the original's id, with duplicate true",
        },
        409: problem(
            "The same user, template and event_id as an earlier notification, with another payload"
        ),
    },
)
async def send_notification(
    body: NotificationIn,
    services: ApiServices = Depends(get_services),
    principal: Principal = Depends(authenticate),
) -> JSONResponse:
    """202 once the notification is durably stored; 200 with the original id for a repeat.
    To a ``topic``: the id is the broadcast's, and every subscriber gets a notification."""
    await _within_allowance(services, principal, 1)
    if body.topic is not None:
        result = await services.ingest.accept_broadcast(
            body.to_request(services.clock.now()), body.topic
        )
    else:
        (result,) = await services.ingest.accept([body.to_request(services.clock.now())])
    if isinstance(result, FrontdeskError):
        services.metrics.notifications.labels("rejected").inc()
        raise result
    services.metrics.notifications.labels("duplicate" if result.duplicate else "accepted").inc()
    return JSONResponse(_accepted(result), status_code=200 if result.duplicate else 202)


@ingest.post(
    "/v1/notifications/batch",
    response_model=BatchResults,
    responses={
        413: problem(f"Over {MAX_BATCH} notifications, or a body over the limit: none is accepted")
    },
)
async def send_batch(
    body: BatchIn,
    services: ApiServices = Depends(get_services),
    principal: Principal = Depends(authenticate),
) -> dict[str, Any]:
    """Up to 1,000 notifications; one result per item, in order. A bad item fails alone."""
    if len(body.notifications) > MAX_BATCH:
        raise TooLarge(
            f"a batch holds at most {MAX_BATCH} notifications; this one has "
            f"{len(body.notifications)} and none was accepted"
        )
    results: list[dict[str, Any] | None] = []
    valid: list[tuple[int, NotificationIn]] = []
    for index, item in enumerate(body.notifications):
        try:
            notification = NotificationIn.model_validate(item)
        except ValidationError as error:
            results.append(_rejected(validation_error(list(error.errors()))))
            continue
        if notification.topic is not None:
            results.append(
                _rejected(
                    InvalidInput.for_field(
                        "topic", "send a notification to a topic with POST /v1/notifications"
                    )
                )
            )
            continue
        valid.append((index, notification))
        results.append(None)
    await _within_allowance(services, principal, len(valid))
    accepted = await services.ingest.accept(
        [item.to_request(services.clock.now()) for _, item in valid]
    )
    for (index, _), outcome in zip(valid, accepted, strict=True):
        results[index] = (
            _rejected(outcome) if isinstance(outcome, FrontdeskError) else _accepted(outcome)
        )
    for result in results:
        services.metrics.notifications.labels(_outcome_label(result)).inc()
    return {"results": results}


async def _within_allowance(services: ApiServices, principal: Principal, count: int) -> None:
    """Take ``count`` notifications from the key's allowance, or refuse the whole request."""
    limiter, allowance = services.ingest_limiter, services.settings.server.ingest_allowance
    if limiter is None or allowance is None or principal.key_id is None or count == 0:
        return
    wait = await limiter.admit(principal.key_id, count)
    if wait > 0:
        rate, burst = allowance
        raise RateLimited(
            f"this API key may send {rate:g} notifications a second, {burst:,} at once "
            f"(server.ingest_rate_per_second, server.ingest_burst); none of these {count:,} "
            "was accepted",
            retry_after_seconds=math.ceil(wait),
        )


@admin.get(
    "/v1/notifications/{notification_id}", response_model=NotificationView, responses=NOT_FOUND
)
async def get_notification(
    notification_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    return notification_view(await services.store.get_notification(notification_id))


@admin.get(
    "/v1/notifications/{notification_id}/audit", response_model=AuditEntries, responses=NOT_FOUND
)
async def notification_audit(
    notification_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    await services.store.get_notification(notification_id)
    entries = await services.store.audit_for_notification(notification_id)
    return {"items": [audit_view(entry) for entry in entries]}


@admin.get("/v1/audit", response_model=AuditPage)
async def search_audit(
    user_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    type: str | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """Audit entries by user, time range and type, oldest first; follow ``next_cursor``."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput.for_field(
                name, "must include a time zone, e.g. 2026-01-01T00:00:00Z"
            )
    after_seq = _cursor(cursor)
    entries = await services.store.search_audit(
        user_id=user_id, since=since, until=until, type_=type, after_seq=after_seq, limit=limit
    )
    next_cursor = str(entries[-1]["seq"]) if len(entries) == limit else None
    return {"items": [audit_view(entry) for entry in entries], "next_cursor": next_cursor}


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise InvalidInput.for_field("cursor", "not a cursor returned by this endpoint")
    return int(cursor)


def _accepted(result: IngestResult) -> dict[str, Any]:
    return {
        "id": result.notification_id,
        "status": "accepted",
        "duplicate": result.duplicate,
    }


def _rejected(error: FrontdeskError) -> dict[str, Any]:
    return {"status": "rejected", "error": problem_body(error)}


def _outcome_label(result: dict[str, Any] | None) -> str:
    if result is None or result["status"] == "rejected":
        return "rejected"
    return "duplicate" if result["duplicate"] else "accepted"
