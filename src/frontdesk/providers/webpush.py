"""Web Push (RFC 8030) to any browser's push service: the payload encrypted for the
subscription (RFC 8291, aes128gcm), the sender identified by VAPID (RFC 8292).

A device token is the browser's PushSubscription as JSON:
``{"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pydantic import model_validator

from frontdesk.core.models import Channel, Priority
from frontdesk.core.ports import Clock, OutboundMessage, SendResult
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.errors import ConfigError
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    retry_after,
    seconds_until,
)
from frontdesk.providers.ssrf_guard import AddressRefused, guarded_client

CHANNEL = Channel.PUSH

# RFC 8292 allows 24 hours at most; half of it leaves room for clocks that disagree.
_VAPID_LIFETIME = timedelta(hours=12)
# RFC 8030's Urgency: how readily the push service may wake a browser on battery for it.
_URGENCY = {Priority.CRITICAL: "high", Priority.NORMAL: "normal", Priority.LOW: "low"}


class Options(ProviderOptions):
    subject: str  # "mailto:ops@example.com" or an https URL: whom the push service may contact
    vapid_private_key_file: Path | None = None  # PEM
    vapid_private_key: str | None = None  # base64url, raw or DER
    ttl_seconds: int = 86400  # how long the push service keeps trying an offline browser
    ca_file: Path | None = None  # trust this CA instead of the system's (a test server)

    @model_validator(mode="after")
    def _one_key_and_a_contact(self) -> Options:
        if (self.vapid_private_key_file is None) == (self.vapid_private_key is None):
            raise ValueError("set exactly one of vapid_private_key_file and vapid_private_key")
        if not self.subject.startswith(("mailto:", "https://")):
            raise ValueError("subject must be a mailto: or https: URL (RFC 8292)")
        return self


@dataclass(frozen=True, slots=True)
class Subscription:
    endpoint: str
    p256dh: bytes  # the browser's public key
    auth: bytes  # the browser's authentication secret

    @classmethod
    def parse(cls, token: str) -> Subscription:
        try:
            subscription = json.loads(token)
            endpoint = subscription["endpoint"]
            keys = subscription["keys"]
            parsed = cls(endpoint, _b64decode(keys["p256dh"]), _b64decode(keys["auth"]))
        except (ValueError, KeyError, TypeError):
            parsed = None
        # RFC 8030 has push services speak HTTPS only.
        if parsed is None or urlsplit(parsed.endpoint).scheme != "https":
            # Nothing can ever be sent to it: the device is as good as gone.
            raise PermanentError(
                "the device token is not a PushSubscription to an https endpoint",
                code="invalid_subscription",
                suppress=True,
            )
        return parsed

    @property
    def origin(self) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"


class WebPushProvider:
    def __init__(
        self,
        name: str,
        vapid: Vapid02,
        subject: str,
        ttl_seconds: int,
        http: httpx.AsyncClient,
        clock: Clock,
    ) -> None:
        self.name = name
        self._vapid = vapid
        self._subject = subject
        self._ttl_seconds = ttl_seconds
        self._http = http
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        subscription = Subscription.parse(message.recipient or "")
        now = self._clock.now()
        payload = json.dumps(
            {
                "title": message.content.get("title", ""),
                "body": message.content.get("body", ""),
                "data": message.content.get("data") or {},
            }
        ).encode()
        headers = {
            **self._authorization(subscription.origin, now),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(
                seconds_until(message.expires_at, now) if message.expires_at else self._ttl_seconds
            ),
            "Urgency": _URGENCY[message.priority],
        }
        try:
            response = await self._http.post(
                subscription.endpoint, content=encrypt(payload, subscription), headers=headers
            )
        except AddressRefused:
            # A subscription whose push service is no public address is no browser's.
            raise PermanentError(
                "webpush: the subscription's push service is at a refused address",
                code="address_refused",
                suppress=True,
            ) from None
        except httpx.TimeoutException:
            raise RetryableError("webpush: no answer in time") from None
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"webpush: {type(error).__name__}") from None
        if response.is_success:
            return SendResult(
                provider=self.name, provider_message_id=response.headers.get("location")
            )
        raise _send_error(response, now)

    def _authorization(self, origin: str, now: datetime) -> dict[str, str]:
        """VAPID's ``Authorization: vapid t=<JWT>, k=<public key>`` for one push service."""
        claims = {
            "aud": origin,
            "exp": int((now + _VAPID_LIFETIME).timestamp()),
            "sub": self._subject,
        }
        signed: dict[str, str] = self._vapid.sign(claims)
        return signed

    async def aclose(self) -> None:
        await self._http.aclose()


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """The payload encrypted for the subscription's keys (RFC 8291), with a key pair and a salt
    of its own, as every message must have."""
    sender_key = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=sender_key,
        dh=subscription.p256dh,
        auth_secret=subscription.auth,
        version="aes128gcm",
    )
    return encrypted


def _send_error(response: httpx.Response, now: datetime) -> Exception:
    status = response.status_code
    text = f"{status} {response.reason_phrase}".strip()
    if status in (404, 410):
        # The browser unsubscribed, or the push service expired the subscription.
        return PermanentError(text, code=str(status), suppress=True)
    if status == 429:
        return Throttled(text, retry_after=retry_after(response, now))
    if status >= 500:
        return ProviderUnavailable(text, retry_after=retry_after(response, now))
    return PermanentError(text, code=str(status))


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _vapid(options: Options) -> Vapid02:
    try:
        if options.vapid_private_key_file is not None:
            return Vapid02.from_pem(options.vapid_private_key_file.read_bytes())
        assert options.vapid_private_key is not None
        return Vapid02.from_string(options.vapid_private_key)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"webpush VAPID private key: unusable ({type(error).__name__})") from None


def build(options: Options, context: ProviderContext) -> WebPushProvider:
    vapid = _vapid(options)
    trust = ssl.create_default_context(cafile=options.ca_file) if options.ca_file else True
    # Each subscription names its own push service, given by a browser: like a webhook's URL, it
    # may reach only public addresses (and allowlisted networks).
    http = guarded_client(context.allowed_networks, context.timeout_seconds, verify=trust)
    return WebPushProvider(
        context.name, vapid, options.subject, options.ttl_seconds, http, context.clock
    )
