"""The console's templates: every template, a page at a time; a template's versions, one
version's content, and a live preview of the latest version per channel and locale (plain links
and form GETs: it works without JavaScript)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from frontdesk.api.pages.console_session import (
    ConsoleRoute,
    OperatorSession,
    operator,
    page_context,
)
from frontdesk.api.pages.rendering import templates
from frontdesk.api.routes_templates import preview_template, template_summary
from frontdesk.api.schemas import PreviewIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import template_view
from frontdesk.core.models import TemplateVersion
from frontdesk.errors import FrontdeskError, NotFound

router = APIRouter(route_class=ConsoleRoute)

PAGE = 50


@router.get("/console/templates", response_class=HTMLResponse)
async def templates_page(
    request: Request,
    template_id: str = "",
    version: int | None = None,
    locale: str = "",
    user_id: str = "",
    payload: str = "{}",
    cursor: str = "",
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    template_id = template_id.strip()
    context = page_context(
        request,
        session,
        section="templates",
        template_id=template_id,
        locale=locale,
        user_id=user_id,
        payload=payload,
        versions=[],
        shown=None,
        preview=None,
        problem=None,
        cursor=cursor,
        listed=[],
        next_cursor=None,
    )
    if template_id:
        try:
            versions = await _versions(services, template_id)
        except NotFound:
            context["problem"] = f"There is no template {template_id!r}."
        else:
            chosen = next((v for v in versions if v.version == version), versions[-1])
            context["versions"] = [template_view(v) for v in reversed(versions)]
            context["shown"] = template_view(chosen)
            context["shown_json"] = json.dumps(chosen.body, indent=2, ensure_ascii=False)
            context["preview"], context["problem"] = await _preview(
                services, template_id, locale, user_id, payload
            )
    else:
        found = await services.store.list_latest_templates(None, cursor or None, PAGE)
        context["listed"] = [template_summary(template) for template in found]
        context["next_cursor"] = found[-1].template_id if len(found) == PAGE else None
    return templates.TemplateResponse(request, "console/templates.html", context)


async def _versions(services: ApiServices, template_id: str) -> list[TemplateVersion]:
    """Every version, oldest first (versions are numbered from 1 without gaps)."""
    latest = await services.store.get_template_version(template_id)
    earlier = [
        await services.store.get_template_version(template_id, number)
        for number in range(1, latest.version)
    ]
    return [*earlier, latest]


async def _preview(
    services: ApiServices, template_id: str, locale: str, user_id: str, payload: str
) -> tuple[dict[str, Any] | None, str | None]:
    """(the rendered channels, None), or (None, why it could not be rendered)."""
    try:
        data = json.loads(payload or "{}")
    except json.JSONDecodeError as error:
        return None, f"The payload is not JSON: {error}."
    try:
        request = PreviewIn(payload=data, locale=locale or None, user_id=user_id or None)
        return await preview_template(template_id, request, services), None
    except ValidationError as error:
        return None, "; ".join(str(problem["msg"]) for problem in error.errors())
    except FrontdeskError as error:
        return None, str(error)
