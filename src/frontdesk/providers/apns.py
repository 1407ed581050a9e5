"""Apple Push Notification service over HTTP/2, authorised by a provider token (a JWT signed
with the team's .p8 key)."""

from __future__ import annotations

import ssl
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from frontdesk.core.models import Channel, Priority
from frontdesk.core.ports import Clock, OutboundMessage, SendResult
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.errors import ConfigError
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    http_client,
    response_json,
    retry_after,
)

CHANNEL = Channel.PUSH

PRODUCTION_URL = "https://api.push.apple.com"
# Apple refuses a provider token older than an hour, and one replaced more often than every
# twenty minutes (TooManyProviderTokenUpdates).
_TOKEN_REUSE = timedelta(minutes=50)
# apns-id must be a UUID: one derived from the delivery id keeps it stable across retries.
_APNS_ID_NAMESPACE = uuid.UUID("6f1c7c1e-5d1a-4d55-9a55-3b9b0e8f2a61")
_DEAD_DEVICE = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)
_PROVIDER_TOKEN_REFUSED = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})


class Options(ProviderOptions):
    team_id: str
    key_id: str
    private_key_file: Path  # the .p8 key (PEM, EC P-256) from the developer account
    topic: str  # the app's bundle id
    base_url: str = PRODUCTION_URL  # development builds: https://api.sandbox.push.apple.com
    ca_file: Path | None = None  # trust this CA instead of the system's (a test server)
    ttl_seconds: int = 86400  # how long APNs keeps trying an offline device


class ProviderTokens:
    """Provider tokens for one key: a new one every 50 minutes, or when APNs refuses the current
    one. A replacement that APNs refuses too is not replaced again before its 50 minutes are up,
    so a wrong key or team id cannot make us replace tokens at every send."""

    def __init__(
        self, team_id: str, key_id: str, key: ec.EllipticCurvePrivateKey, clock: Clock
    ) -> None:
        self._team_id = team_id
        self._key_id = key_id
        self._key = key
        self._clock = clock
        self._signed: tuple[str, datetime] | None = None  # the token, and when it was signed
        self._is_replacement = False

    def current(self) -> str:
        now = self._clock.now()
        if self._signed is None or now - self._signed[1] >= _TOKEN_REUSE:
            return self._sign(now, is_replacement=False)
        return self._signed[0]

    def refused(self, token: str) -> bool:
        """APNs refused ``token``; True when there is a new token worth trying."""
        if self._signed is None or token != self._signed[0]:
            return True  # another send has replaced it already
        if self._is_replacement:
            return False
        self._sign(self._clock.now(), is_replacement=True)
        return True

    def _sign(self, now: datetime, *, is_replacement: bool) -> str:
        token = jwt.encode(
            {"iss": self._team_id, "iat": int(now.timestamp())},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._signed = (token, now)
        self._is_replacement = is_replacement
        return token


class ApnsProvider:
    def __init__(
        self,
        name: str,
        topic: str,
        ttl: timedelta,
        tokens: ProviderTokens,
        http: httpx.AsyncClient,
        clock: Clock,
    ) -> None:
        self.name = name
        self._topic = topic
        self._ttl = ttl
        self._tokens = tokens
        self._http = http
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        path = "/3/device/" + quote(message.recipient or "", safe="")
        body = apns_payload(message.content)
        expires_at = message.expires_at or self._clock.now() + self._ttl
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-priority": apns_priority(message.priority),
            "apns-expiration": str(int(expires_at.timestamp())),
            "apns-id": str(uuid.uuid5(_APNS_ID_NAMESPACE, message.idempotency_key)),
        }
        token = self._tokens.current()
        response = await self._post(path, body, headers, token)
        if _reason(response) in _PROVIDER_TOKEN_REFUSED and self._tokens.refused(token):
            response = await self._post(path, body, headers, self._tokens.current())
        if response.status_code == 200:
            return SendResult(
                provider=self.name, provider_message_id=response.headers.get("apns-id")
            )
        raise _send_error(response, self._clock.now())

    async def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str], token: str
    ) -> httpx.Response:
        try:
            return await self._http.post(
                path, json=body, headers={**headers, "authorization": f"bearer {token}"}
            )
        except httpx.TimeoutException:
            raise RetryableError("apns: no answer in time") from None
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"apns: {type(error).__name__}") from None

    async def aclose(self) -> None:
        await self._http.aclose()


def apns_payload(content: dict[str, Any]) -> dict[str, Any]:
    """The notification's JSON: Apple's ``aps`` dictionary, then the template's data beside it."""
    data = {key: value for key, value in (content.get("data") or {}).items() if key != "aps"}
    alert = {"title": content.get("title", ""), "body": content.get("body", "")}
    return {"aps": {"alert": alert}, **data}


def apns_priority(priority: Priority) -> str:
    """``apns-priority`` for an alert push. Apple's 10 is "send at once" and may only be used
    for a push that alerts the user, as ours all do; 5 is "based on power considerations":
    such pushes may be grouped, throttled, and in some cases not delivered at all. So only a
    notification its sender called low priority may wait; critical and normal go at once."""
    return "5" if priority is Priority.LOW else "10"


def _send_error(response: httpx.Response, now: datetime) -> Exception:
    reason = _reason(response) or "no reason given"
    text = f"{response.status_code} {reason}"
    if reason in _DEAD_DEVICE:
        return PermanentError(text, code=reason, suppress=True)
    if response.status_code == 429:
        return Throttled(text, retry_after=retry_after(response, now))
    if response.status_code >= 500:
        return ProviderUnavailable(text, retry_after=retry_after(response, now))
    return PermanentError(text, code=reason)


def _reason(response: httpx.Response) -> str | None:
    if response.status_code == 200:
        return None
    reason = response_json(response).get("reason")
    return str(reason) if reason is not None else None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"apns private_key_file {str(path)!r} is not a PEM key: {type(error).__name__}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"apns private_key_file {str(path)!r} is not an EC P-256 key")
    return key


def build(options: Options, context: ProviderContext) -> ApnsProvider:
    tokens = ProviderTokens(
        options.team_id, options.key_id, _load_key(options.private_key_file), context.clock
    )
    trust = ssl.create_default_context(cafile=options.ca_file) if options.ca_file else True
    http = http_client(options.base_url, context, http2=True, verify=trust)
    return ApnsProvider(
        context.name,
        options.topic,
        timedelta(seconds=options.ttl_seconds),
        tokens,
        http,
        context.clock,
    )
