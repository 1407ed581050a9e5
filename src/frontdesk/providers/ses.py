"""Email through Amazon SES (API v2 ``SendEmail``), and its bounces, complaints and deliveries.

The message goes as raw MIME (``Content.Raw``), built like SMTP's, so that our headers
(Message-ID, List-Unsubscribe) reach the recipient exactly as written. Requests are signed with
AWS Signature Version 4 by botocore's signer; nothing else of an AWS SDK is needed.

SES reports what happened after it accepted a message through an SNS topic that POSTs to
``/v1/inbound/ses``. SNS signs each message with a certificate it publishes; frontdesk never
fetches it, the operator configures it (``sns_certificate_file``).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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
from frontdesk.errors import ConfigError, Forbidden, InvalidInput, MalformedRequest
from frontdesk.logs import get_logger
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    http_client,
    response_json,
    retry_after,
)
from frontdesk.providers.email_message import delivery_email, envelope_address

CHANNEL = Channel.EMAIL
SEND_EMAIL_PATH = "/v2/email/outbound-emails"

log = get_logger(__name__)

# What the SES v2 reference says each error means; SES's own message text is not repeated
# because it often quotes an address.
_DESCRIPTIONS = {
    "AccessDeniedException": "the credentials may not send email",
    "AccountSuspendedException": "the account may no longer send email",
    "BadRequestException": "the request was invalid",
    "LimitExceededException": "a sending limit was exceeded",
    "MailFromDomainNotVerifiedException": "the sending domain is not verified",
    "MessageRejected": "the message was rejected for its content",
    "NotFoundException": "a resource named in the request does not exist",
    "SendingPausedException": "sending is paused for the account",
    "TooManyRequestsException": "too many requests",
    "InvalidSignatureException": "the request signature does not match",
    "UnrecognizedClientException": "the access key is not recognised",
}
_THROTTLED = frozenset({"TooManyRequestsException", "LimitExceededException"})
# Refusals of our credentials: no message can go through this account until the operator
# fixes them, so the next provider should take it.
_REFUSED_CREDENTIALS = frozenset(
    {"InvalidSignatureException", "UnrecognizedClientException", "AccessDeniedException"}
)


class Options(ProviderOptions):
    region: str
    access_key_id: str
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    sender: str = Field(alias="from")
    base_url: str | None = None  # https://email.{region}.amazonaws.com when unset
    configuration_set: str | None = None  # the one whose event destination is the SNS topic
    sns_certificate_file: Path | None = None  # the PEM certificate SNS signs with
    sns_topic_arn: str | None = None  # accept notifications from this topic only


class SesProvider:
    def __init__(self, options: Options, context: ProviderContext) -> None:
        self.name = context.name
        self._options = options
        self._context = context
        regional_endpoint = f"https://email.{options.region}.amazonaws.com"
        self._url = (options.base_url or regional_endpoint).rstrip("/")
        self._credentials = Credentials(
            options.access_key_id,
            options.secret_access_key.get_secret_value(),
            options.session_token.get_secret_value() if options.session_token else None,
        )
        self._http = http_client(self._url, context)
        self._inbound = (
            SnsNotifications(self.name, options.sns_certificate_file, options.sns_topic_arn)
            if options.sns_certificate_file is not None
            else None
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        now = self._context.clock.now()
        recipient, email = delivery_email(message, sender=self._options.sender, now=now)
        request: dict[str, Any] = {
            "FromEmailAddress": envelope_address(self._options.sender),
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(email.as_bytes()).decode("ascii")}},
        }
        if self._options.configuration_set:
            request["ConfigurationSetName"] = self._options.configuration_set
        body = json.dumps(request).encode()
        try:
            response = await self._http.post(
                SEND_EMAIL_PATH, content=body, headers=self._signed_headers(body)
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ProviderUnavailable(f"could not connect to SES: {type(error).__name__}") from None
        except httpx.TimeoutException:
            raise RetryableError("SES did not answer in time") from None
        except httpx.TransportError as error:
            raise RetryableError(f"the connection to SES failed: {type(error).__name__}") from None
        if response.status_code == 200:
            return SendResult(
                provider=self.name,
                provider_message_id=response.json()["MessageId"],
                details={"message_id_header": email["Message-ID"]},
            )
        raise _error(response, now)

    def _signed_headers(self, body: bytes) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self._url + SEND_EMAIL_PATH,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(self._credentials, "ses", self._options.region).add_auth(request)
        return dict(request.headers.items())

    def inbound_handlers(self) -> list[InboundHandler]:
        return [self._inbound] if self._inbound is not None else []

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(response: httpx.Response, now: datetime) -> Exception:
    code = _error_code(response)
    described = f"{code}: {_DESCRIPTIONS.get(code, f'SES answered {response.status_code}')}"
    if response.status_code == 429 or code in _THROTTLED:
        return Throttled(described, retry_after=retry_after(response, now))
    if response.status_code >= 500 or code in _REFUSED_CREDENTIALS:
        return ProviderUnavailable(described)
    return PermanentError(described, code=code)


def _error_code(response: httpx.Response) -> str:
    """The error's name, read as AWS SDKs do: the x-amzn-ErrorType header, else the body."""
    code = response.headers.get("x-amzn-ErrorType")
    if code is None:
        body = response_json(response)
        code = body.get("__type") or body.get("code") or body.get("Code")
    if not code:
        return f"http_{response.status_code}"
    return str(code).split(":", 1)[0].rsplit("#", 1)[-1]


class SnsNotifications:
    """SES events delivered by SNS: the envelope's signature is checked, then its message read."""

    path = "ses"

    def __init__(self, provider: str, certificate_file: Path, topic_arn: str | None) -> None:
        self._provider = provider
        self._topic_arn = topic_arn
        try:
            key = x509.load_pem_x509_certificate(certificate_file.read_bytes()).public_key()
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"sns_certificate_file: cannot read a PEM certificate: {error}"
            ) from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ConfigError("sns_certificate_file: SNS signs with RSA; this key is not RSA")
        self._key = key

    def handle(self, request: InboundRequest) -> tuple[list[InboundEvent], InboundReply]:
        envelope = _json_object(request.body, "body")
        self._verify(envelope)
        kind = envelope.get("Type")
        if kind == "SubscriptionConfirmation":
            # Confirming means fetching SubscribeURL, which frontdesk never does on its own.
            log.warning(
                "SNS subscription awaits confirmation: open its SubscribeURL or confirm it "
                "in the AWS console",
                provider=self._provider,
            )
            return [], InboundReply()
        if kind != "Notification":
            return [], InboundReply()
        ses_event = _json_object(str(envelope["Message"]).encode(), "Message")
        return self._events(ses_event), InboundReply()

    def _verify(self, envelope: dict[str, Any]) -> None:
        if self._topic_arn is not None and envelope.get("TopicArn") != self._topic_arn:
            raise Forbidden("the notification is not from the configured SNS topic")
        # SignatureVersion 1 is SNS's default; SHA-1 is what its signatures are made with.
        algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(  # noqa: S303
            str(envelope.get("SignatureVersion"))
        )
        if algorithm is None:
            raise Forbidden("unknown SNS SignatureVersion")
        try:
            signature = base64.b64decode(str(envelope["Signature"]), validate=True)
        except (KeyError, ValueError):
            raise Forbidden("the SNS signature is missing or not base64") from None
        try:
            self._key.verify(signature, sns_string_to_sign(envelope), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise Forbidden("the SNS signature does not verify") from None

    def _events(self, event: dict[str, Any]) -> list[InboundEvent]:
        kind = event.get("eventType") or event.get("notificationType")
        message_id = (event.get("mail") or {}).get("messageId")
        try:
            if kind == "Bounce":
                bounce = event["bounce"]
                return [
                    InboundEvent(
                        InboundKind.BOUNCE,
                        Channel.EMAIL,
                        self._provider,
                        address=recipient["emailAddress"],
                        provider_message_id=message_id,
                        permanent=bounce["bounceType"] == "Permanent",
                        reason=f"SES {bounce['bounceType']} bounce "
                        f"({bounce.get('bounceSubType', 'unspecified')})",
                    )
                    for recipient in bounce["bouncedRecipients"]
                ]
            if kind == "Complaint":
                complaint = event["complaint"]
                return [
                    InboundEvent(
                        InboundKind.COMPLAINT,
                        Channel.EMAIL,
                        self._provider,
                        address=recipient["emailAddress"],
                        provider_message_id=message_id,
                        permanent=True,  # the recipient asked for no more
                        reason="SES complaint "
                        f"({complaint.get('complaintFeedbackType', 'unspecified')})",
                    )
                    for recipient in complaint["complainedRecipients"]
                ]
            if kind == "Delivery":
                return [
                    InboundEvent(
                        InboundKind.DELIVERED,
                        Channel.EMAIL,
                        self._provider,
                        address=address,
                        provider_message_id=message_id,
                        reason="SES delivery",
                    )
                    for address in event["delivery"]["recipients"]
                ]
        except (KeyError, TypeError) as error:
            raise InvalidInput.for_field("Message", f"not an SES {kind} event: {error}") from None
        return []  # sends, opens, clicks...: nothing frontdesk acts on


# The fields SNS signs, in this order, per message type (AWS SNS developer guide, "Verifying
# the signatures of Amazon SNS messages").
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip


def sns_string_to_sign(envelope: dict[str, Any]) -> bytes:
    """``name\\nvalue\\n`` for each signed field present (Subject is optional)."""
    fields = _SIGNED_FIELDS.get(str(envelope.get("Type")))
    if fields is None:
        raise InvalidInput.for_field("Type", "not an SNS message type")
    missing = [name for name in fields if name != "Subject" and name not in envelope]
    if missing:
        raise InvalidInput.for_field(missing[0], "required in an SNS message")
    return "".join(f"{name}\n{envelope[name]}\n" for name in fields if name in envelope).encode()


def _json_object(raw: bytes, field: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise MalformedRequest(f"{field}: not JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidInput.for_field(field, "must be a JSON object")
    return parsed


def build(options: Options, context: ProviderContext) -> SesProvider:
    return SesProvider(options, context)
