"""A fake Twilio Messages API on a loopback port, speaking Twilio's own wire format.

It checks what Twilio checks (HTTP basic auth, the account in the path, the form fields a
message needs), answers with Twilio's Message resource or its error bodies, and records every
request with its arrival time. A test can make it refuse the next sends to a number with a
given Twilio error, or hang on them; and, like a real account, it can be given a rate limit
that it enforces with 429s (code 20429).

``signed_callback`` signs a callback the way Twilio does, written from Twilio's documentation
(not from frontdesk's code), so the tests check frontdesk against the documented algorithm.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.serving import serving as serving_app

API_VERSION = "2010-04-01"
HANG_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    at: float  # time.monotonic() on arrival
    form: dict[str, str]
    status: int  # what the fake answered (0 while hanging)
    sid: str | None = None  # the Message resource's sid, when one was created


@dataclass(slots=True)
class Fault:
    status: int
    code: int | None  # None: hang instead of answering
    message: str = ""
    retry_after: float | None = None
    times: int = 1


@dataclass
class TwilioFake:
    account_sid: str
    auth_token: str
    # The account's own limit: more than ``rate_per_second + burst`` accepted sends within any
    # one second are answered 429 (code 20429).
    rate_per_second: float | None = None
    burst: int = 0
    # API keys of the account (SID -> secret): each authenticates in place of the auth token.
    api_keys: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    throttled: int = 0
    _faults: dict[str, deque[Fault]] = field(default_factory=dict)
    _accepted_at: deque[float] = field(default_factory=deque)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def messages(self) -> list[ReceivedRequest]:
        """The sends Twilio accepted (201)."""
        return [r for r in self.requests if r.status == 201]

    def to(self, number: str) -> list[ReceivedRequest]:
        """Every request that tried to send to ``number``, in arrival order."""
        return [r for r in self.requests if r.form.get("To") == number]

    def fail(
        self,
        to: str,
        *,
        code: int,
        status: int,
        message: str = "",
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` sends to ``to`` with Twilio's error ``code``."""
        self._faults.setdefault(to, deque()).append(
            Fault(status, code, message or f"Twilio error {code}", retry_after, times)
        )

    def hang(self, to: str, *, times: int = 1) -> None:
        """Do not answer the next ``times`` sends to ``to`` (until the fake stops)."""
        self._faults.setdefault(to, deque()).append(Fault(0, None, times=times))

    def app(self) -> Starlette:
        path = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json"
        return Starlette(routes=[Route(path, self._create_message, methods=["POST"])])

    async def _create_message(self, request: Request) -> Response:
        arrived = time.monotonic()
        form = await _form(request)
        if not self._authenticated(request.headers.get("authorization", "")):
            realm = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return self._refuse(arrived, form, 401, 20003, "Authenticate", realm)
        if request.path_params["account_sid"] != self.account_sid:
            not_found = f"The requested resource {request.url.path} was not found"
            return self._refuse(arrived, form, 404, 20404, not_found)
        fault = self._take_fault(form.get("To", ""))
        if fault is not None:
            if fault.code is None:
                self.requests.append(ReceivedRequest(arrived, form, 0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), HANG_SECONDS)
                return Response(status_code=504)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else None
            return self._refuse(arrived, form, fault.status, fault.code, fault.message, headers)
        missing = _missing_field(form)
        if missing is not None:
            return self._refuse(arrived, form, 400, *missing)
        if self._over_the_limit(arrived):
            self.throttled += 1
            retry = {"Retry-After": "1"}
            return self._refuse(arrived, form, 429, 20429, "Too Many Requests", retry)
        self._accepted_at.append(arrived)
        resource = self._message_resource(form)
        self.requests.append(ReceivedRequest(arrived, form, 201, str(resource["sid"])))
        return JSONResponse(resource, status_code=201)

    def _refuse(
        self,
        arrived: float,
        form: dict[str, str],
        status: int,
        code: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        self.requests.append(ReceivedRequest(arrived, form, status))
        return _twilio_error(status, code, message, headers)

    def _authenticated(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:
            return False
        username, _, password = decoded.partition(":")
        expected = self.api_keys.get(username) or (
            self.auth_token if username == self.account_sid else ""
        )
        return bool(expected) and hmac.compare_digest(password.encode(), expected.encode())

    def _take_fault(self, to: str) -> Fault | None:
        queued = self._faults.get(to)
        if not queued:
            return None
        fault = queued[0]
        fault.times -= 1
        if fault.times == 0:
            queued.popleft()
        return fault

    def _over_the_limit(self, now: float) -> bool:
        if self.rate_per_second is None:
            return False
        while self._accepted_at and self._accepted_at[0] <= now - 1.0:
            self._accepted_at.popleft()
        return len(self._accepted_at) >= self.rate_per_second + self.burst

    def _message_resource(self, form: Mapping[str, str]) -> dict[str, object]:
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC), usegmt=False)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # With only a Messaging Service, Twilio has yet to pick a sender: "accepted".
            "status": "queued" if "From" in form else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }

    def max_in_any_second(self) -> int:
        """The most accepted sends that arrived within any one-second window."""
        arrivals = sorted(r.at for r in self.messages)
        most, start = 0, 0
        for end, at in enumerate(arrivals):
            while arrivals[start] <= at - 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[TwilioFake]:
        """The fake on a free loopback port until the block ends."""
        async with serving_app(self.app()) as url:
            self.base_url = url
            try:
                yield self
            finally:
                self._released.set()  # a hanging request must not hold the shutdown up


def _twilio_error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Twilio's REST error body."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _form(request: Request) -> dict[str, str]:
    """The body's fields when it is form-encoded, as Twilio requires; else none at all."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _missing_field(form: Mapping[str, str]) -> tuple[int, str] | None:
    """Twilio's error for the first field a message needs and lacks."""
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not form.get("Body"):
        return 21602, "Message body is required."
    validity = form.get("ValidityPeriod", "36000")
    if not validity.isdigit() or not 1 <= int(validity) <= 36000:
        return 21624, "Validity period can only be set to integers between 1 and 36,000 seconds."
    return None


def signed_callback(auth_token: str, url: str, params: Mapping[str, str]) -> dict[str, str]:
    """The headers Twilio sends with a callback to ``url`` carrying the form ``params``:
    X-Twilio-Signature is the base64 HMAC-SHA1, keyed by the auth token, of the URL followed
    by every parameter's name and value, sorted by name."""
    payload = url
    for name in sorted(params):
        payload += name + params[name]
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return {
        "X-Twilio-Signature": base64.b64encode(digest.digest()).decode("ascii"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
