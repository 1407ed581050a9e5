"""A fake Web Push service (RFC 8030) with the browser's side of each subscription.

``subscribe()`` plays the browser: it makes the P-256 key pair and auth secret and returns the
PushSubscription JSON, its endpoint on this fake. A push is accepted only with a valid VAPID
header (RFC 8292: ES256 with the k= key, aud = this origin, exp within 24 hours, a sub) and an
aes128gcm body, which the fake decrypts with the subscription's private key (RFC 8291) and
records. A test queues failures (``fail_next``) or a hang (``hang_next``) for the next pushes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.serving import serving_over_tls

_URGENCIES = frozenset({"very-low", "low", "normal", "high"})  # RFC 8030, section 5.3


@dataclass(frozen=True)
class Push:
    """One push request, whatever it was answered; ``message`` is the decrypted payload."""

    at: float  # time.monotonic()
    subscription_id: str
    headers: dict[str, str]
    message: dict[str, Any] | None


@dataclass
class _Browser:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class _Answer:
    status: int = 201
    retry_after: int | None = None
    hang_seconds: float = 0.0


@dataclass
class FakePushService:
    url: str = ""
    ca_file: Path | None = None
    received: list[Push] = field(default_factory=list)
    delivered: list[Push] = field(default_factory=list)
    _browsers: dict[str, _Browser] = field(default_factory=dict)
    _next: deque[_Answer] = field(default_factory=deque)

    def subscribe(self) -> str:
        """A new browser subscription, as the PushSubscription JSON a browser hands out."""
        subscription_id = secrets.token_urlsafe(12)
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))
        self._browsers[subscription_id] = browser
        public = browser.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return json.dumps(
            {
                "endpoint": f"{self.url}/push/{subscription_id}",
                "keys": {"p256dh": _b64encode(public), "auth": _b64encode(browser.auth)},
            }
        )

    def pushes_to(self, subscription: str) -> list[Push]:
        subscription_id = json.loads(subscription)["endpoint"].rsplit("/", 1)[1]
        return [push for push in self.received if push.subscription_id == subscription_id]

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` pushes with ``status`` (404/410 gone, 413, 429, 5xx)."""
        self._next.extend(_Answer(status, retry_after) for _ in range(times))

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """Keep the next pushes waiting ``seconds`` before answering 503."""
        self._next.extend(_Answer(503, hang_seconds=seconds) for _ in range(times))

    def clear_failures(self) -> None:
        """Forget the failures queued and not yet answered."""
        self._next.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push/{subscription_id}", self._push, methods=["POST"])])

    async def _push(self, request: Request) -> Response:
        subscription_id = request.path_params["subscription_id"]
        browser = self._browsers.get(subscription_id)
        if browser is None:
            return Response("Subscription not found", status_code=404)
        if not self._vapid_verifies(request.headers.get("authorization", "")):
            return Response("Unauthorized", status_code=401)
        if not request.headers.get("ttl", "").isdigit():
            return Response("TTL header is required", status_code=400)
        if request.headers.get("urgency", "normal") not in _URGENCIES:
            return Response("Urgency must be very-low, low, normal or high", status_code=400)
        if request.headers.get("content-encoding") != "aes128gcm":
            return Response("Unsupported Content-Encoding", status_code=415)
        try:
            plaintext = http_ece.decrypt(
                await request.body(),
                private_key=browser.private_key,
                auth_secret=browser.auth,
                version="aes128gcm",
            )
            message = json.loads(plaintext)
        except (http_ece.ECEException, ValueError):
            return Response("Payload could not be decrypted", status_code=400)
        push = Push(time.monotonic(), subscription_id, dict(request.headers), message)
        self.received.append(push)
        answer = self._next.popleft() if self._next else _Answer()
        if answer.hang_seconds:
            await asyncio.sleep(answer.hang_seconds)
        if answer.status != 201:
            headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
            return Response(status_code=answer.status, headers=headers)
        self.delivered.append(push)
        location = f"{self.url}/message/{secrets.token_urlsafe(16)}"
        return Response(status_code=201, headers={"Location": location})

    def _vapid_verifies(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        params = dict(
            param.strip().split("=", 1) for param in credentials.split(",") if "=" in param
        )
        if scheme.lower() != "vapid" or not {"t", "k"} <= params.keys():
            return False
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), _b64decode(params["k"])
            )
            claims = jwt.decode(
                params["t"],
                key,
                algorithms=["ES256"],
                audience=self.url,
                options={"require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.InvalidTokenError):
            return False
        within_a_day = claims["exp"] <= time.time() + 24 * 3600
        return within_a_day and str(claims["sub"]).startswith(("mailto:", "https://"))


def _b64encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@asynccontextmanager
async def serving(fake: FakePushService, directory: Path) -> AsyncIterator[FakePushService]:
    """The fake on a free loopback port over HTTPS, as RFC 8030 requires of a push service."""
    async with serving_over_tls(fake.app(), directory) as (url, ca):
        fake.url, fake.ca_file = url, ca
        yield fake
