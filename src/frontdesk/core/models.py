"""The domain's nouns: notifications, deliveries, users, inbox items, audit entries, statuses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from frontdesk.ids import Prefix, new_id


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    IN_APP = "in_app"
    WEBHOOK = "webhook"


class Category(StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


class Priority(StrEnum):
    CRITICAL = "critical"
    NORMAL = "normal"
    LOW = "low"


def lane(priority: Priority, category: Category) -> int:
    """Smaller lanes are claimed first: critical work, then transactional, then marketing and
    low priority, so a marketing broadcast never holds up an order confirmation."""
    if priority is Priority.CRITICAL:
        return 0
    if priority is Priority.LOW or category is Category.MARKETING:
        return 2
    return 1


class Strategy(StrEnum):
    ALL = "all"
    FIRST = "first"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"
    SUPPRESSED = "suppressed"
    COLLAPSED = "collapsed"
    EXPIRED = "expired"
    DEAD = "dead"

    @property
    def is_terminal(self) -> bool:
        return self not in _PENDING


_PENDING = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING})


class NotificationStatus(StrEnum):
    ACCEPTED = "accepted"
    PROCESSING = "processing"
    COMPLETED = "completed"


class AuditType(StrEnum):
    ACCEPTED = "notification.accepted"
    DUPLICATE = "notification.duplicate"
    RENDERED = "delivery.rendered"
    QUEUED = "delivery.queued"
    DEFERRED = "delivery.deferred"
    SKIPPED = "delivery.skipped"
    ATTEMPT_STARTED = "delivery.attempt_started"
    SENT = "delivery.sent"
    DELIVERED = "delivery.delivered"
    RETRIED = "delivery.retried"
    FAILED = "delivery.failed"
    EXPIRED = "delivery.expired"
    DEAD = "delivery.dead"
    REDRIVEN = "delivery.redriven"
    READ = "delivery.read"
    SUPPRESSED = "delivery.suppressed"
    COLLAPSED = "delivery.collapsed"
    BROADCAST_ACCEPTED = "broadcast.accepted"
    PREFERENCES_CHANGED = "user.preferences_changed"
    ENDPOINT_DISABLED = "webhook.endpoint_disabled"
    UNSUBSCRIBED = "user.unsubscribed"


class Actor(StrEnum):
    API = "api"
    ORCHESTRATOR = "orchestrator"
    WORKER = "worker"
    USER = "user"
    OPERATOR = "operator"
    PROVIDER = "provider"  # a receipt, a bounce, a reply, through /v1/inbound


@dataclass(frozen=True, slots=True)
class ApiKeyGrant:
    """What an API key may do, and which key it is (each has an allowance of its own)."""

    key_id: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as it is kept and shown: what it may do, never the key itself."""

    id: str
    name: str | None
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a user asked for, per channel, category and template (see rules.decide)."""

    channels: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    templates: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    # "category.channel" pairs the user left with a one-click unsubscribe link.
    unsubscribed: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Preferences:
        data = data or {}
        return cls(
            channels=dict(data.get("channels") or {}),
            categories={k: dict(v) for k, v in (data.get("categories") or {}).items()},
            templates={k: dict(v) for k, v in (data.get("templates") or {}).items()},
            unsubscribed=frozenset(data.get("unsubscribed") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "channels": dict(self.channels),
            "categories": {k: dict(v) for k, v in self.categories.items()},
            "templates": {k: dict(v) for k, v in self.templates.items()},
            "unsubscribed": sorted(self.unsubscribed),
        }


class SuppressionKind(StrEnum):
    SUPPRESSED = "suppressed"  # bounced, complained, or put there by an operator
    OPTED_OUT = "opted_out"  # the recipient asked to stop (an SMS STOP), and may START again


@dataclass(frozen=True, slots=True)
class Device:
    """A device registered for push: its token and whose token it is (fcm, apns, webpush; a
    Web Push token is the browser's subscription as JSON)."""

    token: str
    provider: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None
    consent: dict[str, bool] = field(default_factory=dict)
    devices: tuple[Device, ...] = ()
    preferences: Preferences = field(default_factory=lambda: Preferences())

    def template_view(self) -> dict[str, Any]:
        """What a template sees as ``user``. Fields the user lacks are left out rather than
        None, so ``{{ user.name }}`` for a nameless user is an undefined-variable error (or
        falls back with ``| default``) instead of printing "None"."""
        view = {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "locale": self.locale,
            "timezone": self.timezone,
        }
        return {key: value for key, value in view.items() if value is not None} | {
            "properties": self.properties
        }


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    template_id: str
    version: int
    category: Category
    body: dict[str, Any]
    etag: str
    created_at: datetime

    @property
    def strategy(self) -> Strategy:
        return Strategy(self.body.get("strategy") or Strategy.ALL)


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    """A validated request to notify one user, as ingest accepted it."""

    event_id: str
    user_id: str
    template: str
    payload: dict[str, Any]
    channels: tuple[Channel, ...] | None = None
    priority: Priority = Priority.NORMAL
    send_at: datetime | None = None
    expires_at: datetime | None = None
    collapse_key: str | None = None
    strategy: Strategy | None = None
    escalation: dict[str, Any] | None = None
    collapse_window_seconds: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "template": self.template,
            "payload": self.payload,
            "channels": list(self.channels) if self.channels is not None else None,
            "priority": self.priority.value,
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "collapse_key": self.collapse_key,
            "strategy": self.strategy.value if self.strategy else None,
            "escalation": self.escalation,
            "collapse_window_seconds": self.collapse_window_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotificationRequest:
        channels = data.get("channels")
        return cls(
            event_id=data["event_id"],
            user_id=data["user_id"],
            template=data["template"],
            payload=data["payload"],
            channels=tuple(Channel(c) for c in channels) if channels is not None else None,
            priority=Priority(data.get("priority") or Priority.NORMAL),
            send_at=_instant(data.get("send_at")),
            expires_at=_instant(data.get("expires_at")),
            collapse_key=data.get("collapse_key"),
            strategy=Strategy(data["strategy"]) if data.get("strategy") else None,
            escalation=data.get("escalation"),
            collapse_window_seconds=data.get("collapse_window_seconds"),
        )


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    request: NotificationRequest
    template_version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One channel's attempt to deliver one notification; unique per (notification, channel)."""

    id: str
    notification_id: str
    user_id: str
    channel: Channel
    status: DeliveryStatus
    priority: Priority
    recipient: str | None
    content: dict[str, Any]
    attempts: int
    max_attempts: int
    available_at: datetime
    expires_at: datetime | None
    created_at: datetime
    template_id: str
    category: Category
    provider: str | None = None
    reason: str | None = None
    last_error: str | None = None
    # Strategy "first": this delivery's place in the order channels are tried (0 goes first).
    sequence: int | None = None
    # Escalation: the in-app delivery whose being read makes this one unnecessary.
    escalation_of: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: datetime
    type: AuditType
    actor: Actor
    notification_id: str | None = None
    delivery_id: str | None = None
    channel: Channel | None = None
    user_id: str | None = None
    reason: str | None = None


def delivery_audit(
    delivery: Delivery, type_: AuditType, actor: Actor, at: datetime, reason: str | None = None
) -> AuditEntry:
    """An audit entry about one delivery."""
    return AuditEntry(
        id=new_id(Prefix.AUDIT),
        at=at,
        type=type_,
        actor=actor,
        notification_id=delivery.notification_id,
        delivery_id=delivery.id,
        channel=delivery.channel,
        user_id=delivery.user_id,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: str
    user_id: str
    notification_id: str
    delivery_id: str
    title: str
    body: str
    action_url: str | None
    created_at: datetime
    seen_at: datetime | None = None
    read_at: datetime | None = None
    archived_at: datetime | None = None
