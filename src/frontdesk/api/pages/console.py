"""The operator console: logging in and out with an admin API key; the sections (notifications,
dead letters, templates, providers, suppressions) are in the console_*.py modules."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from frontdesk.api.auth import ADMIN, ApiKeyCache
from frontdesk.api.pages import (
    console_dead_letters,
    console_notifications,
    console_operations,
    console_templates,
)
from frontdesk.api.pages.console_session import (
    LOGIN_PATH,
    close_session,
    current_session,
    open_session,
    operator_form,
    page_context,
    read_form,
)
from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services

router = APIRouter(tags=["pages"], include_in_schema=False)
for section in (console_notifications, console_dead_letters, console_templates, console_operations):
    router.include_router(section.router)

_HOME = "/console/notifications"


@router.get("/console")
async def console_home() -> RedirectResponse:
    return RedirectResponse(_HOME, status_code=303)


@router.get(LOGIN_PATH)
async def login_page(
    request: Request, next: str = _HOME, services: ApiServices = Depends(get_services)
) -> Response:
    if current_session(services, request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, _safe_next(next), refused=False)


@router.post(LOGIN_PATH)
async def log_in(request: Request, services: ApiServices = Depends(get_services)) -> Response:
    """Exchange an admin API key for a session. The key is checked as the API checks it and is
    not kept: the cookie carries only a signed, expiring session id."""
    form = await read_form(request)
    destination = _safe_next(form.get("next", _HOME))
    key_cache: ApiKeyCache = request.app.state.api_keys
    grant = await key_cache.grant(services, form.get("api_key", "").strip())
    if grant is None or ADMIN not in grant.scopes:
        return _login_form(request, destination, refused=True)
    response = RedirectResponse(destination, status_code=303)
    open_session(services, request, response)
    return response


@router.post("/console/logout")
async def log_out(
    request: Request,
    _: dict[str, str] = Depends(operator_form),
    services: ApiServices = Depends(get_services),
) -> RedirectResponse:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    close_session(services, request, response)
    return response


def _login_form(request: Request, destination: str, *, refused: bool) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "console/login.html",
        page_context(request, None, section="login", next=destination, refused=refused),
        status_code=401 if refused else 200,
    )


def _safe_next(destination: str) -> str:
    """Only a console path: a login link must not send the operator to another site."""
    if destination == "/console" or destination.startswith("/console/"):
        return destination
    return _HOME
