"""Firebase Cloud Messaging through its HTTP v1 API, authorised as a service account.

The service account's key signs a JWT that Google's token endpoint exchanges for an OAuth2
access token; the access token is reused until shortly before it expires, and fetched again
once if FCM calls it invalid.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt

from frontdesk.core.models import Channel, Priority
from frontdesk.core.ports import Clock, OutboundMessage, SendResult
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.errors import ConfigError
from frontdesk.providers.apns import apns_priority
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    http_client,
    response_json,
    retry_after,
    seconds_until,
)

CHANNEL = Channel.PUSH

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_OAUTH_URL = "https://oauth2.googleapis.com/token"
TOPIC_PREFIX = "/topics/"
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# Google accepts assertions valid for at most an hour.
_ASSERTION_LIFETIME = timedelta(hours=1)
# An access token is replaced this long before it expires, so none expires in flight.
_EXPIRY_MARGIN = timedelta(minutes=5)
# FCM keeps a message for an offline device four weeks at most (AndroidConfig.ttl).
_MAX_TTL_SECONDS = 28 * 24 * 3600


class Options(ProviderOptions):
    service_account_file: Path
    project_id: str | None = None  # default: the service account's project
    base_url: str = "https://fcm.googleapis.com"
    token_url: str | None = None  # default: the service account's token_uri


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields of a Google service account's JSON key that FCM needs."""

    client_email: str
    private_key: str
    private_key_id: str | None
    token_uri: str
    project_id: str | None

    @classmethod
    def load(cls, path: Path) -> ServiceAccount:
        try:
            key = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                client_email=key["client_email"],
                private_key=key["private_key"],
                private_key_id=key.get("private_key_id"),
                token_uri=key.get("token_uri") or GOOGLE_OAUTH_URL,
                project_id=key.get("project_id"),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            # The error names the file and what is wrong, never the key's content.
            raise ConfigError(
                f"fcm service_account_file {str(path)!r} is not a service account key: "
                f"{type(error).__name__}"
            ) from None


class AccessTokens:
    """OAuth2 access tokens for one service account, cached until shortly before they expire."""

    def __init__(
        self, account: ServiceAccount, token_url: str, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        self._account = account
        self._token_url = token_url
        self._http = http
        self._clock = clock
        self._cached: tuple[str, datetime] | None = None  # the token, and when to renew it
        # One fetch at a time: concurrent sends wait for it instead of each fetching a token.
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        async with self._lock:
            if self._cached is None or self._clock.now() >= self._cached[1]:
                self._cached = await self._fetch()
            return self._cached[0]

    def discard(self, token: str) -> None:
        """FCM refused ``token``: the next send fetches a new one (unless another send did)."""
        if self._cached is not None and self._cached[0] == token:
            self._cached = None

    async def _fetch(self) -> tuple[str, datetime]:
        now = self._clock.now()
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        assertion = jwt.encode(
            {
                "iss": self._account.client_email,
                "scope": SCOPE,
                "aud": self._token_url,
                "iat": int(now.timestamp()),
                "exp": int((now + _ASSERTION_LIFETIME).timestamp()),
            },
            self._account.private_key,
            algorithm="RS256",
            headers=headers,
        )
        try:
            response = await self._http.post(
                self._token_url, data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
            )
        except httpx.TimeoutException:
            raise RetryableError("fcm token endpoint: no answer in time") from None
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"fcm token endpoint: {type(error).__name__}") from None
        if response.status_code != 200:
            # Without a token the message surely did not go: another provider may take it, and
            # once the account is fixed the dead letters can be redriven.
            answer = response_json(response)
            raise ProviderUnavailable(
                f"fcm token endpoint: {response.status_code} {answer.get('error', '')}: "
                f"{answer.get('error_description', '')}".rstrip(": "),
                retry_after=retry_after(response, now),
            )
        answer = response.json()
        lifetime = timedelta(seconds=float(answer.get("expires_in", 3600)))
        return str(answer["access_token"]), now + lifetime - _EXPIRY_MARGIN


class FcmProvider:
    def __init__(
        self,
        name: str,
        project_id: str,
        tokens: AccessTokens,
        http: httpx.AsyncClient,
        clock: Clock,
    ) -> None:
        self.name = name
        self._path = f"/v1/projects/{project_id}/messages:send"
        self._tokens = tokens
        self._http = http
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        body = {"message": fcm_message(message, self._clock.now())}
        access_token = await self._tokens.current()
        response = await self._post(body, access_token)
        if _access_token_refused(response):
            # Revoked, or expired before its time: fetch a new one and try once more.
            self._tokens.discard(access_token)
            response = await self._post(body, await self._tokens.current())
        if response.status_code == 200:
            return SendResult(provider=self.name, provider_message_id=response.json()["name"])
        raise _send_error(response, self._clock.now())

    async def _post(self, body: dict[str, Any], access_token: str) -> httpx.Response:
        try:
            response = await self._http.post(
                self._path, json=body, headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.TimeoutException:
            raise RetryableError("fcm: no answer in time") from None
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"fcm: {type(error).__name__}") from None
        return response

    async def aclose(self) -> None:
        await self._http.aclose()


def fcm_message(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    """The v1 ``Message`` for one device token, or for a topic when it reads ``/topics/<name>``:
    the message's priority and expiry go in the Android and the APNs options, FCM passing the
    latter to Apple as its headers."""
    recipient = message.recipient or ""
    target = (
        {"topic": recipient.removeprefix(TOPIC_PREFIX)}
        if recipient.startswith(TOPIC_PREFIX)
        else {"token": recipient}
    )
    content = message.content
    # Android's "normal" may wait while the device dozes; "high" wakes it.
    android: dict[str, Any] = {
        "priority": "high" if message.priority is Priority.CRITICAL else "normal"
    }
    apns_headers = {"apns-priority": apns_priority(message.priority)}
    if message.expires_at is not None:
        ttl = min(seconds_until(message.expires_at, now), _MAX_TTL_SECONDS)
        android["ttl"] = f"{ttl}s"  # a protobuf Duration in JSON
        apns_headers["apns-expiration"] = str(int(message.expires_at.timestamp()))
    fcm: dict[str, Any] = {
        **target,
        "notification": {"title": content.get("title", ""), "body": content.get("body", "")},
        "android": android,
        "apns": {"headers": apns_headers},
    }
    if content.get("data"):
        # FCM's data is a map of strings: anything else is sent as its JSON text.
        fcm["data"] = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in content["data"].items()
        }
    return fcm


def _send_error(response: httpx.Response, now: datetime) -> Exception:
    answer = response_json(response)
    status = answer.get("error", {})  # a google.rpc.Status
    code = _fcm_error_code(answer) or status.get("status") or str(response.status_code)
    text = f"{code}: {status.get('message', '')}".rstrip(": ")
    retry_after_seconds = retry_after(response, now)
    if code == "UNREGISTERED" or code == "SENDER_ID_MISMATCH":
        return PermanentError(text, code=code, suppress=True)
    if code == "INVALID_ARGUMENT":
        return PermanentError(text, code=code, suppress=_about_the_token(status))
    if code == "QUOTA_EXCEEDED" or response.status_code == 429:
        return Throttled(text, retry_after=retry_after_seconds)
    if response.status_code >= 500:
        return ProviderUnavailable(text, retry_after=retry_after_seconds)
    if response.status_code == 401 and code != "THIRD_PARTY_AUTH_ERROR":
        # Refused a second access token: the account, not this message, is at fault.
        return ProviderUnavailable(text)
    return PermanentError(text, code=code)


def _access_token_refused(response: httpx.Response) -> bool:
    """A 401 about our access token; THIRD_PARTY_AUTH_ERROR is a 401 about the app's APNs or
    Web Push credentials in Firebase, which a new access token would not fix."""
    return response.status_code == 401 and _fcm_error_code(response_json(response)) is None


def _fcm_error_code(answer: dict[str, Any]) -> str | None:
    for detail in answer.get("error", {}).get("details", []):
        if detail.get("@type") == _FCM_ERROR_TYPE:
            return str(detail.get("errorCode"))
    return None


def _about_the_token(status: dict[str, Any]) -> bool:
    """INVALID_ARGUMENT is also a too-large payload or a bad data key; only a malformed token
    makes the device dead. FCM says which by the message, or by a field violation."""
    violations = [
        violation.get("field")
        for detail in status.get("details", [])
        if detail.get("@type") == _BAD_REQUEST_TYPE
        for violation in detail.get("fieldViolations", [])
    ]
    return "message.token" in violations or "registration token" in status.get("message", "")


def build(options: Options, context: ProviderContext) -> FcmProvider:
    account = ServiceAccount.load(options.service_account_file)
    project_id = options.project_id or account.project_id
    if not project_id:
        raise ConfigError("fcm project_id: not set, and the service account names no project")
    http = http_client(options.base_url, context)
    tokens = AccessTokens(account, options.token_url or account.token_uri, http, context.clock)
    return FcmProvider(context.name, project_id, tokens, http, context.clock)
