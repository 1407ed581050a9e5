"""Callbacks from providers: delivery receipts, bounces, complaints, SMS replies.

No API key: providers cannot send one. Each callback is authenticated by its provider's own
signature instead, checked by the provider's handler; one that fails is refused with 403 and
changes nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response

from frontdesk.api.problems import BODY_PROBLEMS, NOT_FOUND, problem
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.ports import InboundRequest
from frontdesk.errors import MalformedRequest, NotFound

router = APIRouter(prefix="/v1/inbound", tags=["inbound"])

_FORM = "application/x-www-form-urlencoded"


@router.post(
    "/{path:path}",
    # The answer is whatever the provider expects back (TwiML for Twilio, say), if anything.
    response_class=Response,
    responses={
        **BODY_PROBLEMS,
        403: problem("The provider's signature does not match; nothing changed"),
        **NOT_FOUND,
    },
)
async def receive(
    path: str, request: Request, services: ApiServices = Depends(get_services)
) -> Response:
    handler = services.inbound_handlers.get(path)
    if handler is None:
        configured = ", ".join(sorted(services.inbound_handlers)) or "none"
        raise NotFound(f"no inbound endpoint {path!r}; configured here: {configured}")
    body = await request.body()
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith(_FORM):
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise MalformedRequest("the form body is not UTF-8") from None
    # Signatures cover the URL the provider called: the public one, not ours behind a proxy.
    public_url = services.settings.server.public_url.rstrip("/") + request.url.path
    if request.url.query:
        public_url += "?" + request.url.query
    events, reply = handler.handle(
        InboundRequest(
            url=public_url,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            form=form,
        )
    )
    await services.inbound.apply(events)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
