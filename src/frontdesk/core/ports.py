"""The small interfaces the pipeline depends on; adapters implement them, bootstrap wires them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from frontdesk.core.models import (
    AuditEntry,
    Channel,
    Delivery,
    DeliveryStatus,
    InboxItem,
    Notification,
    Priority,
    SuppressionKind,
    TemplateVersion,
    User,
)
from frontdesk.core.urgency import ALL_LANES


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a provider is asked to send: rendered content for one recipient on one channel."""

    delivery_id: str
    notification_id: str
    user_id: str
    channel: Channel
    recipient: str | None
    content: dict[str, Any]
    # Providers that accept an idempotency key get this, so a retried send is not a second send.
    idempotency_key: str
    attempt: int
    # For providers that can act on them: push priority and urgency, how long to keep trying.
    priority: Priority = Priority.NORMAL
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """A provider accepted the message. ``raw`` is its answer, redacted, for the audit."""

    provider: str
    provider_message_id: str | None = None
    status: DeliveryStatus = DeliveryStatus.SENT
    raw: dict[str, Any] = field(default_factory=dict)
    # Recorded on the delivery: what the provider made of it (SMS segments and encoding, say).
    details: dict[str, Any] = field(default_factory=dict)
    # Device tokens the provider called dead while the message went to the user's other devices.
    dead_recipients: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    """Sends one message; raises RetryableError or PermanentError. Never sleeps, retries, audits."""

    name: str

    async def send(self, message: OutboundMessage) -> SendResult: ...


@runtime_checkable
class BatchProvider(Provider, Protocol):
    """A provider whose sending is a local write (the inbox, the sandbox): one call, and one
    commit, for a whole batch. Each message gets its own result or error, in order."""

    async def send_batch(
        self, messages: Sequence[OutboundMessage]
    ) -> Sequence[SendResult | Exception]: ...


@dataclass(frozen=True, slots=True)
class SandboxMessage:
    id: str
    delivery_id: str
    notification_id: str
    channel: Channel
    recipient: str | None
    content: dict[str, Any]
    headers: dict[str, str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one attempt ended, written by the worker in one step with its audit entries.

    ``attempt`` fences the write: an outcome from a worker whose lease was taken over by
    another is ignored.
    """

    delivery_id: str
    attempt: int
    status: DeliveryStatus
    at: datetime
    audit: tuple[AuditEntry, ...]
    provider: str | None = None
    provider_message_id: str | None = None
    reason: str | None = None
    last_error: str | None = None
    available_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Addresses or device tokens the provider called dead: to suppress, or to forget.
    dead_recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Orchestration:
    """Everything the orchestrator decided for one notification, committed together."""

    notification_id: str
    deliveries: tuple[Delivery, ...]
    audit: tuple[AuditEntry, ...]


class InboxStore(Protocol):
    async def add_inbox_items(self, items: Sequence[InboxItem]) -> list[bool]:
        """Store each item unless its delivery already has one; True where it was added."""
        ...


class SandboxStore(Protocol):
    async def record_sandbox_messages(self, messages: Sequence[SandboxMessage]) -> None: ...


class TemplateSource(Protocol):
    async def get_template_version(
        self, template_id: str, version: int | None = None
    ) -> TemplateVersion: ...

    async def latest_template_versions(
        self, template_ids: list[str]
    ) -> dict[str, TemplateVersion]: ...


class QueueStore(Protocol):
    """The store's side of the embedded transport: events and deliveries claimed by lease."""

    async def claim_notifications(
        self, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Notification]: ...

    async def claim_deliveries(
        self, channel: Channel, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Delivery]: ...


@dataclass(frozen=True, slots=True)
class WorkRef:
    """Work handed to a queue outside the store: a notification to orchestrate or a delivery to
    send (``attempts`` so far: a stale copy of the record finds a different count and is
    refused)."""

    id: str
    user_id: str
    lane: int
    channel: Channel | None = None
    attempts: int = 0
    # An event handed over is held until then: the mark its reference carries, which only the
    # first taker finds (compared as written, never against another process's clock).
    held_until: datetime | None = None


class RelayStore(Protocol):
    """The store's side of an external transport (Kafka): the store keeps the work and its
    state; the transport carries references to it. Work is marked as handed over for a while,
    and taken by id only once, whatever copies of its reference arrive."""

    async def hand_over_events(
        self, limit: int, hold_seconds: float, lanes: Collection[int] = ALL_LANES
    ) -> list[WorkRef]: ...

    async def hand_over_deliveries(
        self, channel: Channel, limit: int, hold_seconds: float, lanes: Collection[int] = ALL_LANES
    ) -> list[WorkRef]: ...

    async def claim_notifications_by_id(
        self, refs: Sequence[WorkRef], lease_seconds: float
    ) -> list[Notification]: ...

    async def claim_deliveries_by_id(
        self, channel: Channel, refs: Sequence[WorkRef], lease_seconds: float
    ) -> list[Delivery]: ...


class BroadcastStore(Protocol):
    """The store's side of topics: broadcasts admitted, then fanned out chunk by chunk."""

    async def admit_broadcast(
        self, broadcast: dict[str, Any], dedupe_key: str, payload_hash: str, expires_at: datetime
    ) -> AdmissionResult: ...

    async def claim_broadcast(self, lease_seconds: float) -> dict[str, Any] | None: ...

    async def subscribers_after(self, topic: str, cursor: str | None, limit: int) -> list[str]: ...

    async def save_fanout_chunk(
        self,
        broadcast_id: str,
        admissions: Sequence[Admission],
        cursor: str | None,
        done: bool,
        lease_seconds: float,
    ) -> list[AdmissionResult]: ...


class Transport(Protocol):
    """The event log and the per-channel delivery queues."""

    async def claim_events(
        self, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Notification]: ...

    async def claim_deliveries(
        self, channel: Channel, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Delivery]: ...

    def events_appended(self) -> None:
        """Ingest committed new events: wake the orchestrator now, not at its next poll."""

    def deliveries_ready(self, channels: Sequence[Channel]) -> None:
        """New or released work on these channels: wake their workers."""

    async def wait_for_events(self, max_wait_seconds: float, lanes: Collection[int]) -> None:
        """Until events are appended (to any lane) or the wait is over."""

    async def wait_for_deliveries(
        self, channel: Channel, max_wait_seconds: float, lanes: Collection[int]
    ) -> None:
        """Until work is ready on the channel (in any lane) or the wait is over."""

    def is_connected(self) -> bool: ...

    def release(self, work_ids: Iterable[str]) -> None:
        """This process is done with these claimed events or deliveries: their results are
        committed, or could not be, and the store takes the work back when its lease runs out."""

    async def deliveries_done(self, channel: Channel, outcomes: Sequence[DeliveryOutcome]) -> None:
        """These outcomes are committed (and the work released)."""


class InboxFeed(Protocol):
    """Tells open inbox streams that a user's inbox changed."""

    def publish(self, user_id: str) -> None: ...

    def subscribe(self, user_id: str) -> AsyncIterator[None]: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """A notification ingest wants stored, with the idempotency key that guards it."""

    notification: Notification
    dedupe_key: str
    payload_hash: str
    dedupe_expires_at: datetime
    lane: int
    broadcast_id: str | None = None


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    """``accepted``: stored now; ``duplicate``: the key is known with this payload (the original
    id is given); ``conflict``: the key is known with another payload."""

    notification_id: str
    outcome: str


class SuppressionCache(Protocol):
    """What the suppression list said of (channel, address) pairs, kept where every process
    finds it fast: the list is read when orchestrating and again before each send.

    The store stays the source of truth: the cache may lose anything at any time, and one that
    cannot answer knows nothing. So it never raises: a cache fault costs speed, not a send.
    """

    async def lookup(
        self, addresses: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], SuppressionKind | None]:
        """The pairs it knows: their kind when on the list, None when known to be off it.
        Pairs it does not know are left out (the store is asked)."""
        ...

    async def remember(self, answers: Mapping[tuple[str, str], SuppressionKind | None]) -> None:
        """What the store just answered (None: not on the list). An answer read before a
        ``forget`` of its pair is not kept."""
        ...

    async def forget(self, addresses: Collection[tuple[str, str]]) -> None:
        """These pairs' entries changed, committed: what was known of them is no longer."""
        ...


class PipelineStore(InboxStore, SandboxStore, TemplateSource, BroadcastStore, Protocol):
    """What ingest, the orchestrator and the workers need from the store."""

    async def get_users(self, user_ids: list[str]) -> dict[str, User]: ...

    async def existing_user_ids(self, user_ids: list[str]) -> set[str]: ...

    async def suppressed(
        self, addresses: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], SuppressionKind]: ...

    async def delivery_statuses(self, delivery_ids: list[str]) -> dict[str, str]: ...

    async def admit(self, admissions: Sequence[Admission]) -> list[AdmissionResult]: ...

    async def save_orchestrations(self, orchestrations: Sequence[Orchestration]) -> None: ...

    async def save_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> list[bool]:
        """Apply each outcome unless its attempt was fenced off; True where applied."""
        ...


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """A provider's call to ``POST /v1/inbound/{path}``, as received. ``url`` is the public URL
    the provider called (``server.public_url`` + path + query), which some signatures cover."""

    url: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    form: Mapping[str, str]  # the body's fields when it is form-encoded, else empty


@dataclass(frozen=True, slots=True)
class InboundReply:
    """What the provider is answered (Twilio reads TwiML from it, say)."""

    status: int = 200
    body: str = ""
    media_type: str = "text/plain"


class InboundKind(StrEnum):
    OPT_OUT = "opt_out"  # the recipient asked to stop (SMS STOP)
    OPT_IN = "opt_in"  # ... and to start again (SMS START)
    DELIVERED = "delivered"  # the provider confirmed delivery
    FAILED = "failed"  # the provider gave up after accepting
    BOUNCE = "bounce"  # the address does not exist (hard) or is full (soft)
    COMPLAINT = "complaint"  # the recipient marked it as spam


@dataclass(frozen=True, slots=True)
class InboundEvent:
    kind: InboundKind
    channel: Channel
    provider: str
    address: str | None = None  # whom it is about: an email address, a phone number
    provider_message_id: str | None = None  # which message, for status updates
    # A bounce or a failure: does it say the address itself is dead (suppress it)?
    permanent: bool = False
    reason: str = ""  # what the provider said, for the audit (no personal data)


@runtime_checkable
class InboundHandler(Protocol):
    """Checks and reads one kind of provider callback. Raises errors.Forbidden when the
    signature does not verify, errors.InvalidInput when the body is not what it should be;
    either way nothing is changed."""

    path: str  # under /v1/inbound/, e.g. "twilio/sms"

    def handle(self, request: InboundRequest) -> tuple[list[InboundEvent], InboundReply]: ...


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One attempt at one endpoint: the signed request, as it must go out."""

    endpoint_id: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout_seconds: float
    # The endpoint's client certificate and key (PEM), for mutual TLS.
    client_identity: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status_code: int
    latency_ms: int
    response_start: str  # the first bytes of the body, capped: what the attempt records
    retry_after: float | None = None


class WebhookUnreachable(Exception):
    """No answer: the address was refused (SSRF protection), the connection failed, or the
    endpoint did not answer within its timeout."""

    def __init__(self, reason: str, *, latency_ms: int) -> None:
        super().__init__(reason)
        self.latency_ms = latency_ms


class WebhookPoster(Protocol):
    async def post(self, request: WebhookRequest) -> WebhookAnswer:
        """POST it, following no redirect; raise WebhookUnreachable when there is no answer."""
        ...


class IngestLimiter(Protocol):
    """Each API key's allowance of notifications (see core.allowance); in this process, or
    shared by every process through Redis."""

    async def admit(self, key: str, count: int) -> float:
        """Take ``count`` from ``key``'s allowance and answer 0; or, when they do not fit, take
        nothing and answer the seconds until they would."""
        ...


class RateLimiter(Protocol):
    """A provider account's limit: ``take`` returns when one more send may go (urgent sends,
    see core.urgency, first). Shared by every worker of a process, or of the cluster."""

    async def take(self) -> None: ...
