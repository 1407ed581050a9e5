"""Request bodies: shapes, types and value checks, so bad input is refused before anything runs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from frontdesk.core.models import Category, Channel, NotificationRequest, Priority, Strategy
from frontdesk.errors import FieldError, InvalidInput

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
Id = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number in E.164 form, e.g. +14155550100") from None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) or formatted != value:
        raise ValueError("not a valid phone number in E.164 form, e.g. +14155550100")
    return value


def _bcp47(value: str) -> str:
    try:
        Locale.parse(value, sep="-")
    except (ValueError, UnknownLocaleError):
        raise ValueError("not a known BCP 47 locale, e.g. fr-CA") from None
    return value


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone, e.g. Europe/Paris") from None
    return value


Phone = Annotated[str, AfterValidator(_e164)]
LocaleTag = Annotated[str, AfterValidator(_bcp47)]
TimeZone = Annotated[str, AfterValidator(_iana_zone)]


class ApiKeyIn(_Strict):
    scopes: list[Literal["admin", "ingest"]] = Field(min_length=1)
    name: str | None = Field(None, max_length=200)


class QuietHoursIn(_Strict):
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("not a time of day as HH:MM, e.g. 22:00")
        return value


class UserIn(_Strict):
    email: EmailStr | None = None
    phone: Phone | None = None
    locale: LocaleTag | None = None
    timezone: TimeZone | None = None
    name: str | None = Field(None, max_length=200)
    properties: dict[str, Any] = {}
    quiet_hours: QuietHoursIn | None = None
    consent: dict[str, bool] = {}


class DeviceIn(_Strict):
    token: str = Field(min_length=1, max_length=4096)
    provider: str = Field(pattern="^(fcm|apns|webpush)$")
    # The token this device had before: apps are given new tokens, and the old one must go.
    replaces: str | None = Field(None, min_length=1, max_length=4096)


# Headers frontdesk sets itself on every webhook request; an endpoint cannot override them.
RESERVED_WEBHOOK_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "connection",
        "transfer-encoding",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _webhook_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError("must be an absolute https:// URL (http:// only for allowlisted networks)")
    if parsed.username or parsed.password:
        raise ValueError("must not carry credentials; use headers instead")
    return value


def _webhook_headers(value: dict[str, str]) -> dict[str, str]:
    for name, header in value.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in RESERVED_WEBHOOK_HEADERS:
            raise ValueError(f"{name!r} is set by frontdesk and cannot be overridden")
        if "\r" in header or "\n" in header:
            raise ValueError(f"the value of {name!r} must be one line")
    return value


WebhookUrl = Annotated[str, Field(max_length=2048), AfterValidator(_webhook_url)]
WebhookHeaders = Annotated[dict[str, str], AfterValidator(_webhook_headers)]
EventTypes = list[Annotated[str, Field(min_length=1, max_length=200)]]


class WebhookEndpointChanges(_Strict):
    url: WebhookUrl | None = None
    description: str | None = Field(None, max_length=1000)
    event_types: EventTypes | None = None
    enabled: bool | None = None
    rate_per_second: float | None = Field(None, gt=0)
    timeout_seconds: float | None = Field(None, gt=0, le=60)
    headers: WebhookHeaders | None = None
    client_certificate: str | None = Field(None, max_length=20_000)
    client_key: str | None = Field(None, max_length=20_000)


class WebhookEndpointIn(WebhookEndpointChanges):
    url: WebhookUrl
    event_types: EventTypes = []
    enabled: bool = True
    headers: WebhookHeaders = {}
    # "v1": HMAC-SHA256 with a shared secret (the default); "v1a": Ed25519, the receiver holds
    # only a public key.
    signature: Literal["v1", "v1a"] = "v1"
    secret: str | None = Field(None, pattern=r"^whsec_[A-Za-z0-9+/=]+$")


class RecoverIn(_Strict):
    since: AwareDatetime


class EscalationIn(_Strict):
    after_seconds: int = Field(ge=1)


class _Content(_Strict):
    pass


class EmailContent(_Content):
    subject: str
    html: str
    text: str | None = None


class SmsContent(_Content):
    text: str


class PushContent(_Content):
    title: str
    body: str
    data: dict[str, Any] | None = None


class InAppContent(_Content):
    title: str
    body: str
    action_url: str | None = None


class WebhookContent(_Content):
    event_type: str
    body: Any = None


CONTENT_MODELS: dict[Channel, type[_Content]] = {
    Channel.EMAIL: EmailContent,
    Channel.SMS: SmsContent,
    Channel.PUSH: PushContent,
    Channel.IN_APP: InAppContent,
    Channel.WEBHOOK: WebhookContent,
}


class TemplateIn(_Strict):
    category: Category = Category.TRANSACTIONAL
    # Plain dicts keep the order the author listed channels in: strategy "first" follows it.
    channels: dict[Channel, dict[str, Any]] = Field(min_length=1)
    locales: dict[LocaleTag, dict[Channel, dict[str, Any]]] = {}
    strategy: Strategy | None = None
    escalation: EscalationIn | None = None
    collapse_window_seconds: int | None = Field(None, ge=0)

    def checked_body(self) -> dict[str, Any]:
        """The body to store, with each channel's content checked against its shape."""
        problems: list[FieldError] = []
        channels = {
            channel.value: _content(channel, content, f"channels.{channel.value}", problems, False)
            for channel, content in self.channels.items()
        }
        locales = {
            locale: {
                channel.value: _content(
                    channel, content, f"locales.{locale}.{channel.value}", problems, True
                )
                for channel, content in overrides.items()
            }
            for locale, overrides in self.locales.items()
        }
        if problems:
            raise InvalidInput("; ".join(f"{p.field}: {p.message}" for p in problems), problems)
        body: dict[str, Any] = {"channels": channels, "locales": locales}
        if self.strategy:
            body["strategy"] = self.strategy.value
        if self.escalation:
            body["escalation"] = self.escalation.model_dump()
        if self.collapse_window_seconds is not None:
            body["collapse_window_seconds"] = self.collapse_window_seconds
        return body


def _content(
    channel: Channel, content: dict[str, Any], where: str, problems: list[FieldError], partial: bool
) -> dict[str, Any]:
    model = CONTENT_MODELS[channel]
    if partial:
        unknown = set(content) - set(model.model_fields)
        problems.extend(FieldError(f"{where}.{name}", "unknown field") for name in sorted(unknown))
        return content
    try:
        return model.model_validate(content).model_dump(exclude_none=True)
    except ValidationError as error:
        for item in error.errors():
            path = ".".join(str(part) for part in item["loc"])
            message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append(FieldError(f"{where}.{path}", message))
        return content


class PreviewIn(_Strict):
    payload: dict[str, Any] = {}
    locale: LocaleTag | None = None
    user_id: Id | None = None


class NotificationIn(_Strict):
    event_id: Id
    user_id: Id | None = None
    topic: Id | None = None
    template: Id
    channels: list[Channel] | None = Field(None, min_length=1)
    payload: dict[str, Any] = {}
    priority: Priority = Priority.NORMAL
    send_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    collapse_key: str | None = Field(None, max_length=200)
    strategy: Strategy | None = None
    escalation: EscalationIn | None = None
    collapse_window_seconds: int | None = Field(None, ge=0)
    ttl_seconds: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_recipient(self) -> NotificationIn:
        if (self.user_id is None) == (self.topic is None):
            raise ValueError("give exactly one of user_id or topic")
        if self.channels is not None and len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: a channel is listed twice")
        if self.send_at and self.expires_at and self.expires_at <= self.send_at:
            raise ValueError("expires_at: must be later than send_at")
        if self.ttl_seconds is not None and self.expires_at is not None:
            raise ValueError("give expires_at or ttl_seconds, not both")
        return self

    def to_request(self, now: datetime) -> NotificationRequest:
        """The request; for a topic, each subscriber's id is filled in at fan-out."""
        expires_at = _utc(self.expires_at)
        if self.ttl_seconds is not None:
            expires_at = max(now, _utc(self.send_at) or now) + timedelta(seconds=self.ttl_seconds)
        return NotificationRequest(
            event_id=self.event_id,
            user_id=self.user_id or "",
            template=self.template,
            payload=self.payload,
            channels=tuple(self.channels) if self.channels is not None else None,
            priority=self.priority,
            send_at=_utc(self.send_at),
            expires_at=expires_at,
            collapse_key=self.collapse_key,
            strategy=self.strategy,
            escalation=self.escalation.model_dump() if self.escalation else None,
            collapse_window_seconds=self.collapse_window_seconds,
        )


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.astimezone(UTC) if value else None


class BatchIn(_Strict):
    # Items are checked one by one in the route, so that a bad item fails alone.
    notifications: list[Any]


class RedriveFilterIn(_Strict):
    channel: Channel | None = None
    since: AwareDatetime | None = None


class FaultIn(_Strict):
    error: str = Field(pattern="^(retryable|permanent|hang)$")
    times: int | None = Field(None, ge=1)
    retry_after_seconds: float | None = Field(None, ge=0)


ChannelChoices = dict[Channel, bool]


class PreferencesIn(_Strict):
    channels: ChannelChoices = {}
    categories: dict[Category, ChannelChoices] = {}
    templates: dict[Id, ChannelChoices] = {}


class SubscribersIn(_Strict):
    user_ids: list[Id] = Field(min_length=1, max_length=10_000)


class SuppressionIn(_Strict):
    reason: str = Field("added by an operator", min_length=1, max_length=500)
