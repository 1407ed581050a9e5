"""Dead letters, the sandbox, health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse

from frontdesk.api.auth import ADMIN, require
from frontdesk.api.problems import (
    AUTHENTICATION_PROBLEMS,
    BODY_PROBLEMS,
    INPUT_PROBLEMS,
    NOT_FOUND,
    problem,
)
from frontdesk.api.schemas import FaultIn, RedriveFilterIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import SandboxMessages, delivery_view
from frontdesk.core.models import Channel
from frontdesk.core.sandbox import Fault, FaultMode
from frontdesk.core.times import rfc3339
from frontdesk.errors import Unavailable

# 422 is declared route by route: GET /v1/sandbox/faults takes no input to refuse.
admin = APIRouter(dependencies=[Depends(require(ADMIN))], responses=AUTHENTICATION_PROBLEMS)
public = APIRouter(tags=["operations"])


@admin.get("/v1/dead-letters", tags=["dead letters"], responses=INPUT_PROBLEMS)
async def list_dead_letters(
    channel: Channel | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    rows = await services.store.list_dead_letters(channel.value if channel else None, cursor, limit)
    return {
        "items": [
            {
                **delivery_view(row),
                "notification_id": row["notification_id"],
                "user_id": row["user_id"],
            }
            for row in rows
        ],
        "next_cursor": rows[-1]["id"] if len(rows) == limit else None,
    }


@admin.post("/v1/dead-letters/redrive", tags=["dead letters"], responses=BODY_PROBLEMS)
async def redrive_matching(
    body: RedriveFilterIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Redrive every dead delivery matching the filter (all of them with an empty filter)."""
    redriven = await services.store.redrive(
        fresh_attempts=services.fresh_attempts(),
        channel=body.channel.value if body.channel else None,
        since=body.since,
    )
    services.transport.deliveries_ready(sorted({d.channel for d in redriven}))
    return {"redriven": len(redriven), "delivery_ids": [d.id for d in redriven]}


@admin.post(
    "/v1/dead-letters/{delivery_id}/redrive",
    tags=["dead letters"],
    responses={
        **INPUT_PROBLEMS,
        **NOT_FOUND,
        409: problem("The delivery is not dead (not in the dead-letter queue)"),
    },
)
async def redrive_one(
    delivery_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    (delivery,) = await services.store.redrive(
        fresh_attempts=services.fresh_attempts(), delivery_id=delivery_id
    )
    services.transport.deliveries_ready([delivery.channel])
    return {"redriven": 1, "delivery_ids": [delivery.id]}


@admin.get(
    "/v1/sandbox/messages",
    tags=["sandbox"],
    response_model=SandboxMessages,
    responses=INPUT_PROBLEMS,
)
async def sandbox_messages(
    channel: Channel | None = None,
    to: str | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """What the sandbox provider would have sent, oldest first."""
    rows = await services.store.list_sandbox_messages(
        channel.value if channel else None, to, cursor, limit
    )
    return {
        "items": [
            {
                "id": row["id"],
                "delivery_id": row["delivery_id"],
                "notification_id": row["notification_id"],
                "channel": row["channel"],
                "provider": "sandbox",
                "to": row["recipient"],
                "content": row["content"],
                "headers": row["headers"],
                "created_at": rfc3339(row["created_at"]),
            }
            for row in rows
        ],
        "next_cursor": rows[-1]["id"] if len(rows) == limit else None,
    }


@admin.get("/v1/sandbox/faults", tags=["sandbox"])
async def list_faults(services: ApiServices = Depends(get_services)) -> dict[str, Any]:
    return {
        "items": [
            {
                "channel": channel.value,
                "error": fault.mode.value,
                "remaining": fault.remaining,
                "retry_after_seconds": fault.retry_after_seconds,
            }
            for channel, fault in (await services.faults.current()).items()
        ]
    }


@admin.put("/v1/sandbox/faults/{channel}", tags=["sandbox"], responses=BODY_PROBLEMS)
async def set_fault(
    channel: Channel, body: FaultIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Make the sandbox provider of a channel fail: ``retryable``, ``permanent`` or ``hang``,
    for the next ``times`` sends (or until removed)."""
    fault = Fault(FaultMode(body.error), body.times, body.retry_after_seconds)
    await services.faults.set(channel, fault)
    return {"channel": channel.value, "error": body.error, "remaining": body.times}


@admin.delete(
    "/v1/sandbox/faults/{channel}", status_code=204, tags=["sandbox"], responses=INPUT_PROBLEMS
)
async def clear_fault(channel: Channel, services: ApiServices = Depends(get_services)) -> Response:
    await services.faults.clear(channel)
    return Response(status_code=204)


@public.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@public.get("/readyz", responses={503: problem("The store or the transport is not reachable")})
async def readyz(services: ApiServices = Depends(get_services)) -> dict[str, str]:
    try:
        await services.store.ping()
    except Exception as error:
        raise Unavailable(f"the store is not reachable: {type(error).__name__}") from None
    transport = "kafka" if services.settings.transport.is_kafka else "embedded"
    if not services.transport.is_connected():
        raise Unavailable(f"the transport ({transport}) is not connected yet")
    return {"status": "ready", "store": services.store.dialect, "transport": transport}


@public.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ApiServices = Depends(get_services)) -> Response:
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")
