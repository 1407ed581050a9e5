"""Templates: versioned, compiled on upload, listed, previewable."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated, Any, NamedTuple

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from frontdesk.api.auth import ADMIN, require
from frontdesk.api.problems import AUTHENTICATION_PROBLEMS, BODY_PROBLEMS, INPUT_PROBLEMS, NOT_FOUND
from frontdesk.api.schemas import Id, PreviewIn, TemplateIn
from frontdesk.api.services import ApiServices, get_services
from frontdesk.api.views import TemplateVersionCreated, template_view
from frontdesk.core.models import Category, TemplateVersion, User
from frontdesk.core.rendering import RenderFailed, compile_template
from frontdesk.core.times import rfc3339
from frontdesk.errors import FieldError, InvalidInput

router = APIRouter(
    prefix="/v1/templates",
    tags=["templates"],
    dependencies=[Depends(require(ADMIN))],
    responses={**AUTHENTICATION_PROBLEMS, **INPUT_PROBLEMS},
)


@router.get("")
async def list_templates(
    category: Category | None = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The previous page's next_cursor")
    ] = None,
    limit: int = Query(50, ge=1, le=200),
    services: ApiServices = Depends(get_services),
) -> dict[str, Any]:
    """The latest version of every template, by template id; follow ``next_cursor``.
    ``category`` keeps the templates whose latest version is in it."""
    found = await services.store.list_latest_templates(
        category.value if category else None, cursor, limit
    )
    return {
        "items": [template_summary(template) for template in found],
        "next_cursor": found[-1].template_id if len(found) == limit else None,
    }


def template_summary(template: TemplateVersion) -> dict[str, Any]:
    """A template as a list shows it: what it is, not its content (GET /v1/templates/{id})."""
    return {
        "template_id": template.template_id,
        "version": template.version,
        "etag": template.etag,
        "category": template.category.value,
        "channels": list(template.body["channels"]),
        "locales": list(template.body["locales"]),
        "created_at": rfc3339(template.created_at),
    }


@router.put(
    "/{template_id}",
    status_code=201,
    response_model=TemplateVersionCreated,
    responses=BODY_PROBLEMS,
)
async def put_template(
    template_id: Id, body: TemplateIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Store a new version. Every field is compiled first: one that does not compile is a 422
    naming the field and line, and nothing is stored."""
    version = new_version(body)
    template = await services.store.add_template_version(
        template_id, version.category.value, version.body, version.content_hash
    )
    services.templates.forget_latest(template_id)
    return {"template_id": template_id, "version": template.version, "etag": template.etag}


class NewVersion(NamedTuple):
    category: Category
    body: dict[str, Any]  # as stored
    content_hash: str

    def same_as(self, template: TemplateVersion) -> bool:
        return template.category is self.category and template.body == self.body


def new_version(body: TemplateIn) -> NewVersion:
    """A template version ready to store, every field compiled; raises InvalidInput naming the
    field (and line) of what does not compile or is not allowed."""
    stored_body = body.checked_body()
    compiled = compile_template(stored_body)
    if (
        body.category is Category.MARKETING
        and "email" in compiled.channels
        and "unsubscribe_url" not in compiled.variables
    ):
        raise InvalidInput.for_field(
            "channels.email.html",
            "a marketing email must show its unsubscribe link: add {{ unsubscribe_url }}",
        )
    content_hash = hashlib.sha256(
        orjson.dumps([body.category.value, stored_body], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return NewVersion(body.category, stored_body, content_hash)


@router.get(
    "/{template_id}",
    responses={
        304: {"description": "Not modified: If-None-Match holds the latest version's ETag"},
        **NOT_FOUND,
    },
)
async def get_template(
    template_id: Id, request: Request, services: ApiServices = Depends(get_services)
) -> Response:
    template = await services.store.get_template_version(template_id)
    etags = _etags(request.headers.get("if-none-match"))
    if template.etag in etags or "*" in etags:
        return Response(status_code=304, headers={"ETag": template.etag})
    return JSONResponse(template_view(template), headers={"ETag": template.etag})


@router.get("/{template_id}/versions/{version}", responses=NOT_FOUND)
async def get_template_version(
    template_id: Id, version: int, services: ApiServices = Depends(get_services)
) -> Response:
    template = await services.store.get_template_version(template_id, version)
    return JSONResponse(template_view(template), headers={"ETag": template.etag})


@router.post("/{template_id}/preview", responses={**BODY_PROBLEMS, **NOT_FOUND})
async def preview_template(
    template_id: Id, body: PreviewIn, services: ApiServices = Depends(get_services)
) -> dict[str, Any]:
    """Render every channel of the latest version, as a given user would receive it."""
    template = await services.store.get_template_version(template_id)
    _, compiled = await services.templates.compiled(template_id, template.version)
    user = User(id=body.user_id or "preview", locale=body.locale)
    if body.user_id:
        found = (await services.store.get_users([body.user_id])).get(body.user_id)
        if found is None:
            # A stand-in would render a preview the named user would never receive.
            raise InvalidInput.for_field("user_id", f"no user {body.user_id!r}")
        user = replace(found, locale=body.locale) if body.locale else found
    locale = compiled.resolve_locale(body.locale or user.locale)
    context = {
        "payload": body.payload,
        "user": user.template_view(),
        "notification": {"id": "ntf_preview", "event_id": "preview", "template": template_id},
        "unsubscribe_url": f"{services.settings.server.public_url}/v1/unsubscribe?token=preview",
        "preferences_url": f"{services.settings.server.public_url}/preferences?token=preview",
    }
    rendered: dict[str, Any] = {}
    problems: list[FieldError] = []
    for channel in compiled.channels:
        try:
            rendered[channel] = compiled.render(channel, locale, context)
        except RenderFailed as error:
            problems.append(FieldError(f"channels.{error.field}", str(error)))
    if problems:
        raise InvalidInput("; ".join(p.message for p in problems), problems)
    return {
        "template_id": template_id,
        "version": template.version,
        "locale": locale,
        "channels": rendered,
    }


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
