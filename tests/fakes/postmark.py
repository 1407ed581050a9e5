"""Postmark's ``POST /email``, as its API reference describes it, on a loopback port.

It checks the server token, the JSON encoding and the required fields, answers with
Postmark's own success and error bodies, and can be told what to answer next.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.serving import serving as serving_app


@dataclass(frozen=True)
class PostmarkEmail:
    body: dict[str, Any]
    message_id: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class _Failure:
    status: int
    error_code: int
    message: str
    retry_after: int | None = None


class PostmarkFake:
    def __init__(self, server_token: str = "postmark-server-token-s3cret") -> None:
        self.server_token = server_token
        self.base_url = ""
        self.sent: list[PostmarkEmail] = []
        self.attempts: list[float] = []  # time.monotonic() of every authenticated request
        self._failures: list[_Failure] = []
        self._hangs: list[float] = []
        self._released = asyncio.Event()

    def fail_next(
        self, status: int, error_code: int, message: str, *, retry_after: int | None = None
    ) -> None:
        """Answer the next send with this error (e.g. 422 with ErrorCode 406)."""
        self._failures.append(_Failure(status, error_code, message, retry_after))

    def hang_next(self, seconds: float) -> None:
        self._hangs.append(seconds)

    def to(self, address: str) -> list[PostmarkEmail]:
        return [email for email in self.sent if email.body["To"] == address]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/email", self._send, methods=["POST"])])

    async def _send(self, request: Request) -> Response:
        token = request.headers.get("x-postmark-server-token")
        if not token:
            return _postmark_error(401, 10, "Request does not contain a valid Server token.")
        if token != self.server_token:
            return _postmark_error(
                401,
                10,
                "The Server Token you provided in the X-Postmark-Server-Token request header "
                "was invalid. Please verify that you are using a valid token.",
            )
        self.attempts.append(time.monotonic())
        if self._hangs:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self._hangs.pop(0))
        if self._failures:
            failure = self._failures.pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return _postmark_error(failure.status, failure.error_code, failure.message, headers)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _postmark_error(422, 409, "JSON required.")
        try:
            body = await request.json()
        except ValueError:
            return _postmark_error(422, 402, "Invalid JSON.")
        problem = _invalid(body)
        if problem:
            return _postmark_error(422, 300, problem)
        message_id = str(uuid.uuid4())
        self.sent.append(PostmarkEmail(body, message_id, time.monotonic()))
        return JSONResponse(
            {
                "To": body["To"],
                "SubmittedAt": datetime.now(UTC).isoformat(),
                "MessageID": message_id,
                "ErrorCode": 0,
                "Message": "OK",
            }
        )

    def webhook_authorization(self, username: str, password: str) -> str:
        """What Postmark sends for credentials written in the webhook URL."""
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[PostmarkFake]:
        """The fake on a free loopback port until the block ends."""
        async with serving_app(self.app()) as url:
            self.base_url = url
            try:
                yield self
            finally:
                self._released.set()  # a hanging request must not hold the shutdown up


def _invalid(body: Any) -> str | None:
    """Why Postmark would refuse this email (ErrorCode 300), or None."""
    if not isinstance(body, dict):
        return "Invalid email request."
    if not body.get("From") or not body.get("To"):
        return "Invalid 'From' or 'To' address."
    if not body.get("HtmlBody") and not body.get("TextBody"):
        return "Provide either email TextBody or HtmlBody or both."
    headers = body.get("Headers", [])
    if not isinstance(headers, list) or any(set(h) != {"Name", "Value"} for h in headers):
        return "Headers must be a list of {Name, Value}."
    return None


def _postmark_error(
    status: int, error_code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"ErrorCode": error_code, "Message": message}, status_code=status, headers=headers
    )
