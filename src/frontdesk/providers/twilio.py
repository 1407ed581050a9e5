"""SMS through Twilio's Programmable Messaging API, and the callbacks Twilio makes to us.

Sending creates a Message resource (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded, HTTP basic auth) that asks Twilio to report its fate to
``/v1/inbound/twilio/status``. Replies to our numbers arrive at ``/v1/inbound/twilio/sms``,
where the opt-out keywords are read. Both callbacks carry ``X-Twilio-Signature``, checked with
the auth token before anything in them is believed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Self
from xml.sax.saxutils import escape

import httpx
import phonenumbers
from pydantic import Field, SecretStr, model_validator

from frontdesk.core.models import Channel
from frontdesk.core.ports import (
    Clock,
    InboundEvent,
    InboundHandler,
    InboundKind,
    InboundReply,
    InboundRequest,
    OutboundMessage,
    SendResult,
)
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.core.sms_segments import count_segments
from frontdesk.errors import Forbidden, InvalidInput
from frontdesk.providers.base import (
    ProviderContext,
    ProviderOptions,
    http_client,
    response_json,
    retry_after,
    seconds_until,
)

CHANNEL = Channel.SMS

STATUS_PATH = "twilio/status"
SMS_PATH = "twilio/sms"
SIGNATURE_HEADER = "x-twilio-signature"

# Twilio's error codes (https://www.twilio.com/docs/api/errors) that say the number itself is
# dead to us: invalid, not a mobile, replied STOP, or (in a status callback) unknown to the
# carrier or a landline. Any other refusal is about the account or the message.
DEAD_NUMBER_CODES = frozenset({21211, 21610, 21614, 30005, 30006})
TOO_MANY_REQUESTS = 20429
AUTHENTICATION_FAILED = 20003

# Twilio's default opt-out keywords: a reply that is exactly one of them, in any case.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# How long Twilio may keep a message queued before it gives up (ValidityPeriod): 1 to 36,000
# seconds, 36,000 when not given (its error 21624).
MAX_VALIDITY_PERIOD = 36000

# Twilio's error messages may quote the number ("The 'To' number +1... is not valid").
_PHONE_LIKE = re.compile(r"(?<!\w)\+?\d(?:[\s().-]{0,2}\d){5,}")


class Options(ProviderOptions):
    account_sid: str
    auth_token: SecretStr  # also the key of the callbacks' signatures, so always required
    sender: str | None = Field(None, alias="from")
    messaging_service_sid: str | None = None
    base_url: str = "https://api.twilio.com"
    # An API key authenticates the sends instead of the auth token when it is configured.
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = None
    help_text: str = "Reply STOP to unsubscribe, START to subscribe again."

    @model_validator(mode="after")
    def _one_sender_and_whole_api_key(self) -> Self:
        if (self.sender is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of `from` and `messaging_service_sid`")
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("set both `api_key_sid` and `api_key_secret`, or neither")
        return self

    def sender_fields(self) -> dict[str, str]:
        """How a message names its sender: a Messaging Service picks the number itself."""
        if self.messaging_service_sid:
            return {"MessagingServiceSid": self.messaging_service_sid}
        assert self.sender is not None  # the validator demands one of the two
        return {"From": self.sender}


class TwilioProvider:
    def __init__(self, options: Options, context: ProviderContext, http: httpx.AsyncClient) -> None:
        self.name = context.name
        self._options = options
        self._clock = context.clock
        self._http = http
        self._path = f"/2010-04-01/Accounts/{options.account_sid}/Messages.json"
        self._status_callback = f"{context.public_url.rstrip('/')}/v1/inbound/{STATUS_PATH}"

    async def send(self, message: OutboundMessage) -> SendResult:
        recipient = message.recipient or ""
        if not is_e164(recipient):
            raise PermanentError(
                "invalid_number: the recipient is not a valid phone number in E.164 form",
                code="invalid_number",
                suppress=True,
            )
        text = str(message.content.get("text", ""))
        form = {
            "To": recipient,
            "Body": text,
            "StatusCallback": self._status_callback,
            **self._options.sender_fields(),
        }
        if message.expires_at is not None:
            # Past the notification's expiry a queued SMS is better dropped than sent late.
            period = seconds_until(message.expires_at, self._clock.now())
            form["ValidityPeriod"] = str(min(max(period, 1), MAX_VALIDITY_PERIOD))
        try:
            response = await self._http.post(self._path, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ProviderUnavailable(f"twilio: {type(error).__name__}") from None
        except httpx.TimeoutException:
            raise RetryableError("twilio: no answer in time") from None
        except httpx.HTTPError as error:  # the connection broke: Twilio may have taken it
            raise RetryableError(f"twilio: {type(error).__name__}") from None
        if response.status_code in (200, 201):
            return self._sent(response, text)
        raise send_error(response, self._clock)

    def _sent(self, response: httpx.Response, text: str) -> SendResult:
        resource = response_json(response)
        if not isinstance(resource.get("sid"), str):
            raise RetryableError(f"twilio: answered {response.status_code} without a message sid")
        counted = count_segments(text)
        details: dict[str, Any] = {"segments": counted.segments, "encoding": counted.encoding.value}
        twilio_segments = resource.get("num_segments")  # a string in Twilio's answer
        if isinstance(twilio_segments, str) and twilio_segments.isdigit():
            details["twilio_num_segments"] = int(twilio_segments)
        return SendResult(
            provider=self.name,
            provider_message_id=resource["sid"],
            raw={"sid": resource["sid"], "status": resource.get("status")},
            details=details,
        )

    def inbound_handlers(self) -> list[InboundHandler]:
        token = self._options.auth_token.get_secret_value()
        return [
            IncomingSms(self.name, token, self._options.help_text),
            StatusCallback(self.name, token),
        ]

    async def aclose(self) -> None:
        await self._http.aclose()


def build(options: Options, context: ProviderContext) -> TwilioProvider:
    if options.api_key_sid and options.api_key_secret:
        auth = httpx.BasicAuth(options.api_key_sid, options.api_key_secret.get_secret_value())
    else:
        auth = httpx.BasicAuth(options.account_sid, options.auth_token.get_secret_value())
    return TwilioProvider(options, context, http_client(options.base_url, context, auth=auth))


def is_e164(number: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted == number and phonenumbers.is_valid_number(parsed)


def send_error(response: httpx.Response, clock: Clock) -> Exception:
    """What Twilio's refusal means: its error body is ``{"code", "message", "more_info",
    "status"}``, and the code, more than the HTTP status, says whose fault it is."""
    answer = response_json(response)
    status = response.status_code
    code = answer.get("code")
    said = f"twilio error {code or status}: " + _PHONE_LIKE.sub(
        "[number]", str(answer.get("message") or response.reason_phrase)
    )
    if status == 429 or code == TOO_MANY_REQUESTS:
        return Throttled(said, retry_after=retry_after(response, clock.now()))
    if status >= 500:
        return ProviderUnavailable(said)
    if status == 401 or code == AUTHENTICATION_FAILED:
        return PermanentError(
            f"{said} (a configuration problem: check account_sid and auth_token or the API key)",
            code=str(code or status),
        )
    return PermanentError(said, code=str(code or status), suppress=code in DEAD_NUMBER_CODES)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: HMAC-SHA1, keyed by the auth token, of the URL Twilio called
    followed by each POST parameter's name and value, sorted by name; base64-encoded."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class _SignedCallback:
    def __init__(self, provider: str, auth_token: str) -> None:
        self._provider = provider
        self._auth_token = auth_token

    def _verify(self, request: InboundRequest) -> None:
        expected = twilio_signature(self._auth_token, request.url, request.form)
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise Forbidden("the X-Twilio-Signature does not match this request")


class IncomingSms(_SignedCallback):
    """A reply to one of our numbers: an opt-out, an opt-in, a request for help, or chatter."""

    path = SMS_PATH

    def __init__(self, provider: str, auth_token: str, help_text: str) -> None:
        super().__init__(provider, auth_token)
        self._help_text = help_text

    def handle(self, request: InboundRequest) -> tuple[list[InboundEvent], InboundReply]:
        self._verify(request)
        sender = _required(request.form, "From")
        keyword = request.form.get("Body", "").strip().upper()
        if keyword in HELP_KEYWORDS:
            return [], twiml(f"<Message>{escape(self._help_text)}</Message>")
        if keyword in OPT_OUT_KEYWORDS:
            kind = InboundKind.OPT_OUT
        elif keyword in OPT_IN_KEYWORDS:
            kind = InboundKind.OPT_IN
        else:
            return [], twiml("")
        event = InboundEvent(
            kind, Channel.SMS, self._provider, address=sender, reason=f"SMS keyword {keyword}"
        )
        # Twilio answers the keyword itself (its Advanced Opt-Out), so we add no message.
        return [event], twiml("")


class StatusCallback(_SignedCallback):
    """What became of a message we sent: only the final verdicts change the delivery."""

    path = STATUS_PATH

    def handle(self, request: InboundRequest) -> tuple[list[InboundEvent], InboundReply]:
        self._verify(request)
        message_sid = _required(request.form, "MessageSid")
        status = _required(request.form, "MessageStatus")
        if status == "delivered":
            event = InboundEvent(
                InboundKind.DELIVERED,
                Channel.SMS,
                self._provider,
                provider_message_id=message_sid,
                reason="delivered to the handset",
            )
            return [event], twiml("")
        if status in ("undelivered", "failed"):
            error_code = request.form.get("ErrorCode", "")
            event = InboundEvent(
                InboundKind.FAILED,
                Channel.SMS,
                self._provider,
                address=request.form.get("To"),
                provider_message_id=message_sid,
                permanent=error_code.isdigit() and int(error_code) in DEAD_NUMBER_CODES,
                reason=f"{status}, error {error_code or 'unknown'}",
            )
            return [event], twiml("")
        return [], twiml("")  # queued, sending, sent: not yet a verdict


def twiml(verbs: str) -> InboundReply:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{verbs}</Response>'
    return InboundReply(status=200, body=body, media_type="application/xml")


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise InvalidInput.for_field(name, "required")
    return value
