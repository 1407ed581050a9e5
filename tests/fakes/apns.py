"""A fake of the Apple Push Notification service: HTTP/2 over TLS (ALPN h2) on loopback.

It checks the provider token as APNs does (ES256 with the team's key, its kid and iss, an
hour at most), the path's device token, apns-topic and the payload, records the HTTP version
of every request, and answers with Apple's own error bodies. A test queues documented failures
(``fail_next``) or a hang (``hang_next``) for the next sends.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.serving import serving_over_tls

# Apple's reasons and the HTTP status each comes with.
APNS_ERRORS: dict[str, int] = {
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "DeviceTokenNotForTopic": 400,
    "InvalidPushType": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "ExpiredProviderToken": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "Unregistered": 410,
    "ExpiredToken": 410,
    "PayloadTooLarge": 413,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}
_MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class Notification:
    """One request to /3/device/{token}, whatever it was answered."""

    at: float  # time.monotonic()
    http_version: str
    device_token: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass
class _Answer:
    reason: str | None = None
    retry_after: int | None = None
    hang_seconds: float = 0.0


@dataclass
class FakeApns:
    team_id: str
    key_id: str
    signing_key: EllipticCurvePublicKey
    topic: str
    url: str = ""
    ca_file: Path | None = None
    received: list[Notification] = field(default_factory=list)
    delivered: list[Notification] = field(default_factory=list)
    _next: deque[_Answer] = field(default_factory=deque)
    _tokens_seen: set[str] = field(default_factory=set)
    _tokens_expired: set[str] = field(default_factory=set)

    def fail_next(self, reason: str, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` sends with Apple's ``reason`` (see APNS_ERRORS)."""
        self._next.extend(_Answer(reason, retry_after) for _ in range(times))

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """Keep the next sends waiting ``seconds`` before answering 503."""
        self._next.extend(_Answer(hang_seconds=seconds) for _ in range(times))

    def clear_failures(self) -> None:
        """Forget the failures queued and not yet answered."""
        self._next.clear()

    def expire_provider_tokens(self) -> None:
        """Call every provider token seen so far expired, as APNs does after an hour."""
        self._tokens_expired |= self._tokens_seen

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/3/device/{device_token}", self._push, methods=["POST"])])

    async def _push(self, request: Request) -> Response:
        raw = await request.body()
        notification = Notification(
            at=time.monotonic(),
            http_version=request.scope["http_version"],
            device_token=request.path_params["device_token"],
            headers=dict(request.headers),
            payload=_json_object(raw),
        )
        self.received.append(notification)
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        refused = self._refused(request, raw)
        if refused:
            return _error(refused, apns_id)
        answer = self._next.popleft() if self._next else _Answer()
        if answer.hang_seconds:
            await asyncio.sleep(answer.hang_seconds)
            return _error("ServiceUnavailable", apns_id)
        if answer.reason:
            headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else {}
            return _error(answer.reason, apns_id, headers)
        self.delivered.append(notification)
        return Response(status_code=200, headers={"apns-id": apns_id})

    def _refused(self, request: Request, raw: bytes) -> str | None:
        """Apple's reason for refusing the request as it stands, if any."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token, self.signing_key, algorithms=["ES256"], options={"require": ["iss", "iat"]}
            )
        except jwt.InvalidTokenError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        self._tokens_seen.add(token)
        if token in self._tokens_expired or time.time() - claims["iat"] > 3600:
            return "ExpiredProviderToken"
        device_token = request.path_params["device_token"]
        if not device_token or any(c not in string.hexdigits for c in device_token):
            return "BadDeviceToken"
        if not request.headers.get("apns-topic"):
            return "MissingTopic"
        if request.headers["apns-topic"] != self.topic:
            return "TopicDisallowed"
        if request.headers.get("apns-push-type") not in {"alert", "background"}:
            return "InvalidPushType"
        if request.headers.get("apns-priority") not in {None, "1", "5", "10"}:
            return "BadPriority"
        if not request.headers.get("apns-expiration", "0").isdigit():
            return "BadExpirationDate"
        if "apns-id" in request.headers and not _is_uuid(request.headers["apns-id"]):
            return "BadMessageId"
        if not raw:
            return "PayloadEmpty"
        if len(raw) > _MAX_PAYLOAD_BYTES:
            return "PayloadTooLarge"
        if "aps" not in _json_object(raw):
            return "PayloadEmpty"
        return None


def _error(reason: str, apns_id: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"reason": reason}
    status = APNS_ERRORS[reason]
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return JSONResponse(body, status_code=status, headers={"apns-id": apns_id, **(headers or {})})


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@asynccontextmanager
async def serving(fake: FakeApns, directory: Path) -> AsyncIterator[FakeApns]:
    """The fake on a free loopback port, HTTP/2 only, as APNs serves."""
    async with serving_over_tls(fake.app(), directory, alpn=("h2",)) as (url, ca_file):
        fake.url, fake.ca_file = url, ca_file
        yield fake
