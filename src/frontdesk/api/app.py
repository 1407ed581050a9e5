"""The FastAPI application: routers, the problem handlers, body limits and access logs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import frontdesk
from frontdesk.api import (
    routes_inbound,
    routes_inbox,
    routes_keys,
    routes_notifications,
    routes_operations,
    routes_preferences,
    routes_templates,
    routes_topics,
    routes_users,
    routes_webhooks,
)
from frontdesk.api.auth import ApiKeyCache
from frontdesk.api.pages import console, inbox, preference_centre
from frontdesk.api.pages.rendering import static_files
from frontdesk.api.problems import UNEXPECTED, install_problem_handlers, problem_response
from frontdesk.api.services import ApiServices
from frontdesk.errors import TooLarge
from frontdesk.logs import get_logger

log = get_logger("frontdesk.access")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(services: ApiServices, lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        title="frontdesk",
        version=frontdesk.__version__,
        description="Multi-channel notifications: one event in; the right message out on "
        "email, SMS, push, in-app and webhooks.",
        lifespan=lifespan,
        responses=UNEXPECTED,
    )
    app.state.services = services
    app.state.api_keys = ApiKeyCache()
    install_problem_handlers(app)
    for router in (
        routes_notifications.ingest,
        routes_notifications.admin,
        routes_users.router,
        routes_templates.router,
        routes_inbox.router,
        routes_preferences.preferences,
        routes_preferences.suppressions,
        routes_preferences.unsubscribe,
        routes_topics.router,
        routes_inbound.router,
        routes_webhooks.router,
        inbox.router,
        preference_centre.router,
        console.router,
        routes_keys.router,
        routes_operations.admin,
        routes_operations.public,
    ):
        app.include_router(router)

    app.mount("/static", static_files(), name="static")
    # Added before CORS, so that CORS wraps it: a browser may read the 413 too.
    app.add_middleware(RequestBodyLimit, max_bytes=services.settings.server.max_body_bytes)
    if services.settings.server.cors_origins:
        # The inbox component on a customer's own site calls the inbox API and its stream
        # with the user's token in a header: no cookies are involved.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.server.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            max_age=600,
        )

    @app.middleware("http")
    async def access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        services.metrics.http_requests.labels(
            request.method, route, str(response.status_code)
        ).inc()
        # The route template, never the raw path: paths carry addresses and user ids.
        log.info(
            "http request",
            method=request.method,
            route=route,
            status_code=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    return app


class _BodyOverLimit(Exception):
    """Raised into the app from ``receive`` once the body passes the limit, so that it stops
    reading; whatever it answers then is dropped."""


class RequestBodyLimit:
    """Refuses a request body over ``max_bytes`` with a 413 problem: before reading it when its
    Content-Length says so, else (a chunked body has none) as soon as the bytes received pass
    the limit, so that no body over it is ever held in memory whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = TooLarge(f"the request body is over the limit of {max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            await problem_response(self.refusal)(scope, receive, send)
            return
        received = 0
        answer_started = refused = False

        async def receive_within_limit() -> Message:
            nonlocal received, answer_started, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An answer already under way (a stream) cannot become a 413.
                    if not answer_started:
                        answer_started = refused = True
                        await problem_response(self.refusal)(scope, receive, send)
                    raise _BodyOverLimit
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal answer_started
            if refused:
                return
            answer_started = answer_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_refused)
        except _BodyOverLimit:
            if not refused:
                raise
