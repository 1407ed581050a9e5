"""The operator console's session: an admin API key, checked once at login, is exchanged for a
signed, expiring session cookie; every form carries a CSRF token bound to that session.

Both are stateless tokens signed with the server's secret (core/tokens.py), so any process of
the deployment accepts them and nothing is stored. The session cookie carries a random session
id; the CSRF token is a second token over the same id, so it cannot be reused across sessions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.tokens import InvalidToken, sign_token, verify_token
from frontdesk.errors import Forbidden

SESSION_COOKIE = "frontdesk_console"
SESSION_LIFETIME = timedelta(hours=8)
CSRF_FIELD = "csrf_token"
_SESSION_PURPOSE = "console-session"
_CSRF_PURPOSE = "console-csrf"
LOGIN_PATH = "/console/login"


@dataclass(frozen=True, slots=True)
class OperatorSession:
    session_id: str
    csrf_token: str


class LoginRequired(Exception):
    """A console page was asked for without a valid session: send the operator to log in."""


class ConsoleRoute(APIRoute):
    """A console route: a page asked for without a session redirects to the login form
    (a person followed a link) instead of answering with an API problem document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_or_ask_to_log_in(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired:
                wanted = request.url.path
                if request.url.query:
                    wanted += "?" + request.url.query
                return RedirectResponse(f"{LOGIN_PATH}?next={quote(wanted)}", status_code=303)

        return handle_or_ask_to_log_in


def open_session(services: ApiServices, request: Request, response: Response) -> None:
    """Set the session cookie on ``response``: HttpOnly so page scripts cannot read it,
    SameSite=Strict so no other site's form or link carries it, Secure over https."""
    expires_at = services.clock.now() + SESSION_LIFETIME
    cookie = sign_token(
        services.token_secret, _SESSION_PURPOSE, secrets.token_urlsafe(16), expires_at
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_served_over_https(services, request),
    )


def close_session(services: ApiServices, request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_served_over_https(services, request),
    )


def current_session(services: ApiServices, request: Request) -> OperatorSession | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        session_id = verify_token(
            services.token_secret, _SESSION_PURPOSE, cookie, services.clock.now()
        )
    except InvalidToken:
        return None
    csrf_token = sign_token(
        services.token_secret,
        _CSRF_PURPOSE,
        session_id,
        services.clock.now() + SESSION_LIFETIME,
    )
    return OperatorSession(session_id=session_id, csrf_token=csrf_token)


async def operator(
    request: Request, services: ApiServices = Depends(get_services)
) -> OperatorSession:
    """For pages: the operator's session, or a redirect to the login form."""
    session = current_session(services, request)
    if session is None:
        raise LoginRequired
    return session


async def operator_form(
    request: Request, services: ApiServices = Depends(get_services)
) -> dict[str, str]:
    """For every POST: the submitted form, once the session and its CSRF token are checked.
    A refusal is a 403 raised before the route body runs, so it changes nothing."""
    session = current_session(services, request)
    if session is None:
        raise Forbidden("log in to the console first: this request carries no valid session")
    form = await read_form(request)
    try:
        form_session_id = verify_token(
            services.token_secret, _CSRF_PURPOSE, form.get(CSRF_FIELD, ""), services.clock.now()
        )
    except InvalidToken:
        form_session_id = None
    if form_session_id != session.session_id:
        raise Forbidden("the form's CSRF token does not belong to this session")
    return form


async def read_form(request: Request) -> dict[str, str]:
    """An HTML form's fields (application/x-www-form-urlencoded; the console's forms upload no
    files). A repeated field keeps its last value."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def page_context(
    request: Request, session: OperatorSession | None, **values: Any
) -> dict[str, Any]:
    """What every console template is given: the request and the CSRF token for its forms,
    plus the page's own values (``section`` marks the current navigation link)."""
    return {
        "request": request,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token if session else None,
        **values,
    }


def _served_over_https(services: ApiServices, request: Request) -> bool:
    return request.url.scheme == "https" or services.settings.server.public_url.startswith(
        "https://"
    )
