"""Email through Postmark (``POST /email``), and its bounce, delivery and complaint webhooks.

Postmark does not sign webhooks: they are protected by HTTP basic credentials written into
the webhook URL configured at Postmark (``https://user:password@host/v1/inbound/postmark``),
which frontdesk checks (``webhook_username``, ``webhook_password``).
"""

from __future__ import annotations

import base64
import hmac
import json
from datetime import datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr

from frontdesk.core.models import Channel
from frontdesk.core.ports import (
    InboundEvent,
    InboundHandler,
    InboundKind,
    InboundReply,
    InboundRequest,
    OutboundMessage,
    SendResult,
)
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.errors import Forbidden, InvalidInput, MalformedRequest
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    http_client,
    response_json,
    retry_after,
)
from frontdesk.providers.email_message import email_recipient, plain_text

CHANNEL = Channel.EMAIL

# Postmark's API error codes (its API reference, "Error codes"), named in our errors instead of
# its message text, which quotes the addresses concerned.
_ERROR_NAMES = {
    10: "bad or missing server token",
    300: "invalid email request",
    400: "sender signature not found",
    401: "sender signature not confirmed",
    402: "invalid JSON",
    403: "incompatible JSON",
    405: "not allowed to send",
    406: "inactive recipient",
    409: "JSON required",
    412: "account is pending",
    413: "account may not send",
    429: "rate limit exceeded",
}
# The recipient was deactivated by Postmark after a hard bounce, a spam complaint or a manual
# suppression: it will refuse every later message to them.
_INACTIVE_RECIPIENT = 406
# Bounce types after which Postmark deactivates the address (its bounce API's "Bounce types").
_HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})


class Options(ProviderOptions):
    server_token: SecretStr
    sender: str = Field(alias="from")
    base_url: str = "https://api.postmarkapp.com"
    message_stream: str = "outbound"
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None


class PostmarkProvider:
    def __init__(self, options: Options, context: ProviderContext) -> None:
        self.name = context.name
        self._options = options
        self._clock = context.clock
        self._http = http_client(
            options.base_url,
            context,
            headers={
                "Accept": "application/json",
                "X-Postmark-Server-Token": options.server_token.get_secret_value(),
            },
        )
        self._webhooks = (
            PostmarkWebhooks(self.name, options.webhook_username, options.webhook_password)
            if options.webhook_username and options.webhook_password
            else None
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        recipient = email_recipient(message)
        content = message.content
        email = {
            "From": self._options.sender,
            "To": recipient,
            "Subject": str(content["subject"]),
            "HtmlBody": str(content["html"]),
            "TextBody": plain_text(content),
            "Headers": [
                {"Name": name, "Value": str(value)}
                for name, value in (content.get("headers") or {}).items()
            ],
            "MessageStream": self._options.message_stream,
            # Echoed back in every webhook about this message.
            "Metadata": {"delivery_id": message.delivery_id},
        }
        try:
            response = await self._http.post("/email", json=email)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ProviderUnavailable(
                f"could not connect to Postmark: {type(error).__name__}"
            ) from None
        except httpx.TimeoutException:
            raise RetryableError("Postmark did not answer in time") from None
        except httpx.TransportError as error:
            raise RetryableError(
                f"the connection to Postmark failed: {type(error).__name__}"
            ) from None
        if response.status_code == 200:
            return SendResult(provider=self.name, provider_message_id=response.json()["MessageID"])
        raise _error(response, self._clock.now())

    def inbound_handlers(self) -> list[InboundHandler]:
        return [self._webhooks] if self._webhooks is not None else []

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(response: httpx.Response, now: datetime) -> Exception:
    status = response.status_code
    try:
        code: int | None = int(response_json(response)["ErrorCode"])
    except (KeyError, ValueError, TypeError):
        code = None
    said = f"Postmark answered {status}"
    if code is not None:
        said += f", ErrorCode {code}: {_ERROR_NAMES.get(code, 'see its error codes')}"
    if status == 429:
        return Throttled(said, retry_after=retry_after(response, now))
    # A refused token refuses every message: the next provider should take them.
    if status >= 500 or status == 401:
        return ProviderUnavailable(said)
    return PermanentError(said, code=str(code or status), suppress=code == _INACTIVE_RECIPIENT)


class PostmarkWebhooks:
    """Bounce, SpamComplaint and Delivery webhooks, authenticated by HTTP basic credentials."""

    path = "postmark"

    def __init__(self, provider: str, username: str, password: SecretStr) -> None:
        self._provider = provider
        credentials = f"{username}:{password.get_secret_value()}".encode()
        self._authorization = b"Basic " + base64.b64encode(credentials)

    def handle(self, request: InboundRequest) -> tuple[list[InboundEvent], InboundReply]:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._authorization):
            raise Forbidden("the webhook's credentials do not match")
        try:
            record = json.loads(request.body)
        except ValueError:
            raise MalformedRequest("body: not JSON") from None
        if not isinstance(record, dict):
            raise InvalidInput.for_field("body", "must be a JSON object")
        try:
            return self._events(record), InboundReply()
        except (KeyError, TypeError) as error:
            raise InvalidInput.for_field(str(error), "missing from the webhook") from None

    def _events(self, record: dict[str, Any]) -> list[InboundEvent]:
        kind = record.get("RecordType")
        if kind == "Bounce":
            return [
                InboundEvent(
                    InboundKind.BOUNCE,
                    Channel.EMAIL,
                    self._provider,
                    address=record["Email"],
                    provider_message_id=record.get("MessageID"),
                    permanent=record["Type"] in _HARD_BOUNCES or record.get("Inactive") is True,
                    reason=f"Postmark {record['Type']}",
                )
            ]
        if kind == "SpamComplaint":
            return [
                InboundEvent(
                    InboundKind.COMPLAINT,
                    Channel.EMAIL,
                    self._provider,
                    address=record["Email"],
                    provider_message_id=record.get("MessageID"),
                    permanent=True,  # the recipient asked for no more
                    reason="Postmark spam complaint",
                )
            ]
        if kind == "Delivery":
            return [
                InboundEvent(
                    InboundKind.DELIVERED,
                    Channel.EMAIL,
                    self._provider,
                    address=record["Recipient"],
                    provider_message_id=record.get("MessageID"),
                    reason="Postmark delivery",
                )
            ]
        return []  # opens, clicks, subscription changes: nothing frontdesk acts on


def build(options: Options, context: ProviderContext) -> PostmarkProvider:
    return PostmarkProvider(options, context)
