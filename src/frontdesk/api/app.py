"""The FastAPI application: routers, the problem handlers, body limits and access logs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

import frontdesk
from frontdesk.api import (
    routes_inbound,
    routes_inbox,
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
from frontdesk.api.problems import install_problem_handlers, problem_response
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
    )
    app.state.services = services
    app.state.api_keys = ApiKeyCache()
    install_problem_handlers(app)
    for router in (
        routes_notifications.router,
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
        routes_operations.admin,
        routes_operations.public,
    ):
        app.include_router(router)

    app.mount("/static", static_files(), name="static")
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

    max_body = services.settings.server.max_body_bytes

    @app.middleware("http")
    async def limits_and_access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            response: Response = problem_response(
                TooLarge(f"the request body is over the limit of {max_body} bytes")
            )
        else:
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
