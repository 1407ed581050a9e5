"""The console's dead letters: grouped by channel, provider and error, so one cause is one row,
with redrive of a single delivery or of a whole group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from frontdesk.api.pages.console_session import (
    ConsoleRoute,
    OperatorSession,
    operator,
    operator_form,
    page_context,
)
from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.models import Delivery
from frontdesk.core.times import rfc3339
from frontdesk.errors import Conflict, NotFound

router = APIRouter(route_class=ConsoleRoute)

# The page reads at most this many dead letters; a larger backlog is redriven by channel with
# `frontdesk dlq` or the API, and the page says it stopped short.
MOST_DEAD_LETTERS_SHOWN = 5000
_PAGE = 1000


@dataclass(slots=True)
class DeadLetterGroup:
    channel: str
    provider: str
    error: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)


@router.get("/console/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(
    request: Request,
    redriven: int | None = None,
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    dead, complete = await _dead_letters(services)
    return templates.TemplateResponse(
        request,
        "console/dead_letters.html",
        page_context(
            request,
            session,
            section="dead-letters",
            groups=_grouped(dead),
            total=len(dead),
            complete=complete,
            redriven=redriven,
        ),
    )


@router.post("/console/dead-letters/redrive")
async def redrive_group(
    form: dict[str, str] = Depends(operator_form),
    services: ApiServices = Depends(get_services),
) -> RedirectResponse:
    """Redrive every dead letter of one group, as the page listed it."""
    channel, provider, error = form.get("channel", ""), form.get("provider", ""), form.get("error")
    dead, _ = await _dead_letters(services)
    members = [
        row["id"]
        for row in dead
        if (row["channel"], row["provider"] or "", _error(row)) == (channel, provider, error)
    ]
    redriven = await _redrive(services, members)
    return _back(redriven)


@router.post("/console/dead-letters/{delivery_id}/redrive")
async def redrive_one(
    delivery_id: str,
    _: dict[str, str] = Depends(operator_form),
    services: ApiServices = Depends(get_services),
) -> RedirectResponse:
    return _back(await _redrive(services, [delivery_id]))


async def _dead_letters(services: ApiServices) -> tuple[list[dict[str, Any]], bool]:
    """Dead letters in id order, and whether that is all of them."""
    dead: list[dict[str, Any]] = []
    cursor = None
    while len(dead) < MOST_DEAD_LETTERS_SHOWN:
        page = await services.store.list_dead_letters(None, cursor, _PAGE)
        dead.extend(page)
        if len(page) < _PAGE:
            return dead, True
        cursor = page[-1]["id"]
    return dead, False


def _grouped(dead: Sequence[dict[str, Any]]) -> list[DeadLetterGroup]:
    """Groups, largest first: the cause that killed the most deliveries leads."""
    groups: dict[tuple[str, str, str], DeadLetterGroup] = {}
    for row in dead:
        key = (row["channel"], row["provider"] or "", _error(row))
        group = groups.setdefault(key, DeadLetterGroup(*key))
        group.deliveries.append(
            {
                "id": row["id"],
                "notification_id": row["notification_id"],
                "user_id": row["user_id"],
                "attempts": row["attempts"],
                "updated_at": rfc3339(row["updated_at"]),
            }
        )
    return sorted(groups.values(), key=lambda group: -len(group.deliveries))


def _error(row: dict[str, Any]) -> str:
    return str(row["last_error"] or row["reason"] or "no error recorded")


async def _redrive(services: ApiServices, delivery_ids: list[str]) -> int:
    """Redrive each delivery that is still dead; one another operator redrove meanwhile is
    left alone (a redrive never makes a second delivery)."""
    redriven: list[Delivery] = []
    for delivery_id in delivery_ids:
        try:
            redriven.extend(
                await services.store.redrive(
                    fresh_attempts=services.fresh_attempts(), delivery_id=delivery_id
                )
            )
        except (Conflict, NotFound):
            continue
    if redriven:
        services.transport.deliveries_ready(sorted({delivery.channel for delivery in redriven}))
    return len(redriven)


def _back(redriven: int) -> RedirectResponse:
    return RedirectResponse(
        "/console/dead-letters?" + urlencode({"redriven": redriven}), status_code=303
    )
