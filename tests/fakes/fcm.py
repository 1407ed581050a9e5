"""A fake of Firebase Cloud Messaging's HTTP v1 API and of Google's OAuth2 token endpoint.

The token endpoint checks the service account's signed JWT as Google does (RS256 signature,
audience, scope, an hour at most) and issues access tokens; ``messages:send`` accepts only
those, for its own project, with a body FCM would accept. A test queues documented failures
(``fail_next``) or a hang (``hang_next``) for the next sends.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.serving import serving as serving_app

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_DURATION = re.compile(r"\d+(\.\d{1,9})?s")  # a protobuf Duration in JSON: "3s", "3.5s"

# The FCM v1 error codes: HTTP status, google.rpc status, and the message FCM sends with them.
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Messages sent' and limit 'Messages sent per minute'.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}


@dataclass(frozen=True)
class SendAttempt:
    """One call of messages:send, whatever it was answered."""

    at: float  # time.monotonic()
    message: dict[str, Any]


@dataclass
class _Answer:
    error_code: str | None = None
    retry_after: int | None = None
    hang_seconds: float = 0.0


@dataclass
class FakeFcm:
    project_id: str
    client_email: str
    account_key: RSAPublicKey
    url: str = ""
    attempts: list[SendAttempt] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # accepted messages
    token_requests: int = 0
    _issued: set[str] = field(default_factory=set)
    _next: deque[_Answer] = field(default_factory=deque)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def fail_next(self, error_code: str, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` sends with FCM's error ``error_code`` (see FCM_ERRORS)."""
        self._next.extend(_Answer(error_code, retry_after) for _ in range(times))

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """Keep the next sends waiting ``seconds`` before answering 503."""
        self._next.extend(_Answer(hang_seconds=seconds) for _ in range(times))

    def clear_failures(self) -> None:
        """Forget the failures queued and not yet answered."""
        self._next.clear()

    def revoke_access_tokens(self) -> None:
        self._issued.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/v1/projects/{project_id}/{method}", self._send, methods=["POST"]),
            ]
        )

    async def _token(self, request: Request) -> JSONResponse:
        self.token_requests += 1
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "Bad Request")
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type: ")
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.account_key,
                algorithms=["RS256"],
                audience=self.token_url,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidTokenError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims["iss"] != self.client_email:
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        if SCOPE not in str(claims.get("scope", "")).split():
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience.")
        if claims["exp"] - claims["iat"] > 3600:
            return _oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        access_token = "ya29." + secrets.token_urlsafe(32)
        self._issued.add(access_token)
        return JSONResponse(
            {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def _send(self, request: Request) -> JSONResponse:
        if request.path_params["method"] != "messages:send":
            return _rpc_error(404, "NOT_FOUND", "Method not found.")
        scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or access_token not in self._issued:
            return _rpc_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        if request.path_params["project_id"] != self.project_id:
            return _rpc_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource.",
            )
        body = await request.json()
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return _rpc_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        self.attempts.append(SendAttempt(time.monotonic(), message))
        problem = _invalid(message)
        if problem:
            return _rpc_error(400, "INVALID_ARGUMENT", problem)
        answer = self._next.popleft() if self._next else _Answer()
        if answer.hang_seconds:
            await asyncio.sleep(answer.hang_seconds)
            return _rpc_error(503, "UNAVAILABLE", "The service is currently unavailable.")
        if answer.error_code:
            status, rpc_status, text = FCM_ERRORS[answer.error_code]
            headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
            return _rpc_error(status, rpc_status, text, answer.error_code, headers)
        self.delivered.append(message)
        message_id = f"0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        return JSONResponse({"name": f"projects/{self.project_id}/messages/{message_id}"})


def _invalid(message: dict[str, Any]) -> str | None:
    """What FCM would refuse in a Message, if anything."""
    targets = [key for key in ("token", "topic", "condition") if key in message]
    if len(targets) != 1:
        return "Exactly one of token, topic or condition must be specified."
    notification = message.get("notification", {})
    if not all(isinstance(notification.get(key, ""), str) for key in ("title", "body")):
        return "Invalid value at 'message.notification' (TYPE_STRING)"
    for index, value in enumerate(message.get("data", {}).values()):
        if not isinstance(value, str):
            return f"Invalid value at 'message.data[{index}].value' (TYPE_STRING)"
    android = message.get("android", {})
    if android.get("priority", "normal").lower() not in {"normal", "high"}:
        return "Invalid value at 'message.android.priority'"
    if "ttl" in android and not _DURATION.fullmatch(str(android["ttl"])):
        return "Invalid value at 'message.android.ttl' (google.protobuf.Duration)"
    headers = message.get("apns", {}).get("headers", {})
    if not all(isinstance(value, str) for value in headers.values()):
        return "Invalid value at 'message.apns.headers' (TYPE_STRING)"
    return None


def _rpc_error(
    status: int,
    rpc_status: str,
    text: str,
    fcm_error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": text, "status": rpc_status}
    if fcm_error_code:
        error["details"] = [{"@type": _FCM_ERROR, "errorCode": fcm_error_code}]
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


@asynccontextmanager
async def serving(fake: FakeFcm) -> AsyncIterator[FakeFcm]:
    """The fake on a free loopback port, inside the test's event loop."""
    async with serving_app(fake.app()) as url:
        fake.url = url
        yield fake
