"""Topics (audiences for broadcasts) and the broadcasts sent to them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from frontdesk.api.auth import ADMIN, require
from frontdesk.api.problems import AUTHENTICATION_PROBLEMS, BODY_PROBLEMS, INPUT_PROBLEMS, NOT_FOUND
from frontdesk.api.schemas import Id, SubscribersIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.times import rfc3339
from frontdesk.errors import InvalidInput

router = APIRouter(
    tags=["topics"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)


@router.put("/v1/topics/{topic}/subscribers", responses=BODY_PROBLEMS)
async def subscribe(
    topic: Id, body: SubscribersIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Add users to the topic (up to 10,000 per call); adding one twice is harmless."""
    known = await services.store.existing_user_ids(body.user_ids)
    unknown = [u for u in body.user_ids if u not in known]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise InvalidInput.for_field(
            "user_ids", f"{len(unknown)} unknown user(s), e.g. {shown}; create them first"
        )
    await services.store.add_subscribers(topic, body.user_ids)
    return {"topic": topic, "subscribers": await services.store.count_subscribers(topic)}


@router.delete("/v1/topics/{topic}/subscribers", responses=BODY_PROBLEMS)
async def unsubscribe_from_topic(
    topic: Id, body: SubscribersIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    removed = await services.store.remove_subscribers(topic, body.user_ids)
    return {
        "topic": topic,
        "removed": removed,
        "subscribers": await services.store.count_subscribers(topic),
    }


@router.get("/v1/topics/{topic}/subscribers")
async def count_subscribers(
    topic: Id, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    return {"topic": topic, "subscribers": await services.store.count_subscribers(topic)}


@router.get("/v1/broadcasts/{broadcast_id}", responses=NOT_FOUND)
async def get_broadcast(
    broadcast_id: str, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """How far the fan-out of a notification to a topic has come."""
    row = await services.store.get_broadcast(broadcast_id)
    return {
        "id": row["id"],
        "topic": row["topic"],
        "template": row["request"]["template"],
        "event_id": row["request"]["event_id"],
        "status": "completed" if row["completed_at"] else "fanning_out",
        "notifications": row["fanned_out"],
        "created_at": rfc3339(row["created_at"]),
        "completed_at": rfc3339(row["completed_at"]),
    }
