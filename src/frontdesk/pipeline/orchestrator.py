"""The orchestrator: turns each event into one delivery per channel, rendered, with its audit.

Every decision (which channels, why a channel is skipped, what was rendered in which locale) is
written on the delivery and in the audit, in the same commit as the event's completion.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from frontdesk.core.models import (
    Actor,
    AuditEntry,
    AuditType,
    Category,
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationRequest,
    Priority,
    Strategy,
    SuppressionKind,
    TemplateVersion,
    User,
    delivery_audit,
)
from frontdesk.core.ports import Clock, Orchestration, PipelineStore, Transport
from frontdesk.core.rendering import CompiledTemplate, RenderFailed
from frontdesk.core.rules import (
    addresses,
    quiet_hours_end,
    release_time,
    screen,
    select_channels,
)
from frontdesk.core.tokens import Links
from frontdesk.core.urgency import BULK_LANES, URGENT_LANES, urgent_if
from frontdesk.ids import Prefix, new_id
from frontdesk.logs import get_logger
from frontdesk.pipeline.frequency import Ledger
from frontdesk.pipeline.templates import TemplateCatalog

log = get_logger(__name__)

_LINK_NAMES = frozenset({"unsubscribe_url", "preferences_url"})
# Planning is pure computation (rules, rendering) with nothing to wait on: a batch of 500
# would hold the event loop for a quarter of a second, and an order confirmation's request,
# claim or commit with it. The loop gets a turn after every few plans.
_PLANS_PER_TURN = 20
# Where standby deliveries of strategy "first" wait until the worker calls on them.
STANDBY = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Viable:
    """A channel that passed every rule and was rendered: it will get a delivery."""

    channel: Channel
    recipient: str | None
    content: dict[str, Any]
    release_at: datetime
    deferral: str | None
    delivery_id: str = field(default_factory=lambda: new_id(Prefix.DELIVERY))
    sequence: int | None = None
    escalation_of: str | None = None


_AUDIT_FOR = {
    DeliveryStatus.SKIPPED: AuditType.SKIPPED,
    DeliveryStatus.SUPPRESSED: AuditType.SUPPRESSED,
}


@dataclass(frozen=True, slots=True)
class OrchestratorSettings:
    max_attempts: Mapping[Channel, int]
    quiet_channels: frozenset[Channel] = frozenset({Channel.SMS, Channel.PUSH})
    quiet_spread_seconds: float = 300.0
    batch_size: int = 500
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5


class Orchestrator:
    def __init__(
        self,
        store: PipelineStore,
        transport: Transport,
        templates: TemplateCatalog,
        clock: Clock,
        settings: OrchestratorSettings,
        links: Links,
        ledger: Ledger,
    ) -> None:
        self._store = store
        self._transport = transport
        self._templates = templates
        self._clock = clock
        self._settings = settings
        self._links = links
        self._ledger = ledger

    async def run(self, stopping: asyncio.Event) -> None:
        """Urgent lanes have a loop of their own: an order confirmation is planned at once, not
        after the broadcast batch in progress."""
        await asyncio.gather(self._drain(URGENT_LANES, stopping), self._drain(BULK_LANES, stopping))

    async def _drain(self, lanes: frozenset[int], stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                with urgent_if(lanes == URGENT_LANES):
                    handled = await self.process_batch(lanes)
            except Exception:
                log.exception("orchestrator batch failed; its events will be claimed again")
                handled = 0
                await asyncio.sleep(self._settings.poll_seconds)
            if handled == 0:
                await self._transport.wait_for_events(self._settings.poll_seconds, lanes)

    async def process_batch(self, lanes: frozenset[int]) -> int:
        notifications = await self._transport.claim_events(
            self._settings.batch_size, self._settings.lease_seconds, lanes
        )
        if not notifications:
            return 0
        try:
            await self.orchestrate(notifications)
        finally:
            self._transport.release(n.id for n in notifications)
        return len(notifications)

    async def orchestrate(self, notifications: Sequence[Notification]) -> list[Orchestration]:
        """Plan each notification's deliveries and commit them with the audit; deliveries a
        notification already has (a replayed event) are not made again."""
        users = await self._store.get_users([n.request.user_id for n in notifications])
        suppressed = await self._store.suppressed(
            address for user in users.values() for address in addresses(user)
        )
        now = self._clock.now()
        await self._ledger.prepare([n.request.user_id for n in notifications], now)
        orchestrations = []
        for planned, notification in enumerate(notifications, 1):
            template, compiled = await self._templates.compiled(
                notification.request.template, notification.template_version
            )
            user = users.get(notification.request.user_id)
            orchestrations.append(
                await self.plan(notification, user, template, compiled, suppressed, now)
            )
            if planned % _PLANS_PER_TURN == 0:
                await asyncio.sleep(0)
        await self._store.save_orchestrations(orchestrations)
        self._transport.deliveries_ready(
            sorted({d.channel for o in orchestrations for d in o.deliveries})
        )
        return orchestrations

    async def plan(
        self,
        notification: Notification,
        user: User | None,
        template: TemplateVersion,
        compiled: CompiledTemplate,
        suppressed: Mapping[tuple[str, str], SuppressionKind],
        now: datetime,
    ) -> Orchestration:
        request = notification.request
        channels = select_channels(compiled.channels, request.channels)
        deliveries: list[Delivery] = []
        audit: list[AuditEntry] = []

        def record(
            channel: Channel,
            status: DeliveryStatus,
            *,
            recipient: str | None = None,
            content: dict[str, Any] | None = None,
            reason: str | None = None,
            available_at: datetime | None = None,
            delivery_id: str | None = None,
            sequence: int | None = None,
            escalation_of: str | None = None,
        ) -> Delivery:
            delivery = Delivery(
                id=delivery_id or new_id(Prefix.DELIVERY),
                notification_id=notification.id,
                user_id=request.user_id,
                channel=channel,
                status=status,
                priority=request.priority,
                recipient=recipient,
                content=content or {},
                attempts=0,
                max_attempts=self._settings.max_attempts.get(channel, 8),
                available_at=available_at or now,
                expires_at=request.expires_at,
                created_at=now,
                template_id=request.template,
                category=template.category,
                reason=reason,
                sequence=sequence,
                escalation_of=escalation_of,
            )
            deliveries.append(delivery)
            return delivery

        def note(delivery: Delivery, type_: AuditType, reason: str | None) -> None:
            audit.append(delivery_audit(delivery, type_, Actor.ORCHESTRATOR, now, reason))

        viable: list[_Viable] = []
        collapsed_into = await self._collapsed_into(notification, template, now)
        locale = compiled.resolve_locale(user.locale if user else None)
        context = self._context(notification, user, compiled, template.category, now)
        for channel in channels:
            if user is None:
                note(
                    record(channel, DeliveryStatus.SKIPPED, reason="the user no longer exists"),
                    AuditType.SKIPPED,
                    "the user no longer exists",
                )
                continue
            if collapsed_into is not None:
                reason = f"collapsed into {collapsed_into} (same collapse_key)"
                note(
                    record(channel, DeliveryStatus.COLLAPSED, reason=reason),
                    AuditType.COLLAPSED,
                    reason,
                )
                continue
            screening = screen(
                user,
                channel,
                category=template.category,
                template_id=request.template,
                priority=request.priority,
                suppressed=suppressed,
            )
            if screening.status is not None:
                note(
                    record(channel, screening.status, reason=screening.reason),
                    _AUDIT_FOR[screening.status],
                    screening.reason,
                )
                continue
            capped = (
                None
                if request.priority is Priority.CRITICAL
                else await self._ledger.take(user.id, channel.value, template.category.value, now)
            )
            if capped is not None:
                reason = (
                    f"frequency cap reached: {capped.count} {template.category.value} per "
                    f"{capped.per_seconds:g}s on {channel.value}"
                )
                note(
                    record(channel, DeliveryStatus.SKIPPED, reason=reason),
                    AuditType.SKIPPED,
                    reason,
                )
                continue
            recipient = screening.recipient
            try:
                content = compiled.render(channel.value, user.locale, context, user.timezone)
                if channel is Channel.EMAIL and template.category is Category.MARKETING:
                    content["headers"] = one_click_unsubscribe(context["unsubscribe_url"])
                if channel is Channel.SMS and template.category is Category.MARKETING:
                    content["text"] = with_opt_out(content["text"])
            except RenderFailed as error:
                note(
                    record(channel, DeliveryStatus.FAILED, reason=str(error)),
                    AuditType.FAILED,
                    str(error),
                )
                continue
            release_at, deferral = self._when(channel, user, request, now)
            viable.append(_Viable(channel, recipient, content, release_at, deferral))
        for item in self._route(notification, template, viable, now):
            delivery = record(
                item.channel,
                DeliveryStatus.DEFERRED if item.deferral else DeliveryStatus.QUEUED,
                recipient=item.recipient,
                content=item.content,
                reason=item.deferral,
                available_at=item.release_at,
                delivery_id=item.delivery_id,
                sequence=item.sequence,
                escalation_of=item.escalation_of,
            )
            note(
                delivery,
                AuditType.RENDERED,
                f"template {request.template} v{notification.template_version}, "
                f"locale {locale or 'default'}",
            )
            note(
                delivery,
                AuditType.DEFERRED if item.deferral else AuditType.QUEUED,
                item.deferral,
            )
        return Orchestration(notification.id, tuple(deliveries), tuple(audit))

    def _route(
        self,
        notification: Notification,
        template: TemplateVersion,
        viable: list[_Viable],
        now: datetime,
    ) -> list[_Viable]:
        """One ticket per event. Strategy "first": only the first channel goes; the others wait
        on standby and the worker moves down the list when one does not go out. Escalation:
        in_app goes; the other channels wait, and go only if the in-app item is still unread."""
        request = notification.request
        strategy = request.strategy or template.strategy
        escalation = request.escalation or template.body.get("escalation")
        if strategy is Strategy.FIRST and viable:
            first = viable[0].channel.value
            return [
                replace(item, sequence=position)
                if position == 0
                else replace(
                    item,
                    sequence=position,
                    release_at=STANDBY,
                    deferral=f"standby: strategy first tries {first} first",
                )
                for position, item in enumerate(viable)
            ]
        in_app = next((item for item in viable if item.channel is Channel.IN_APP), None)
        if not escalation or in_app is None:
            return viable
        after = timedelta(seconds=int(escalation["after_seconds"]))
        return [
            item
            if item is in_app
            else replace(
                item,
                release_at=max(item.release_at, now + after),
                deferral=f"escalation: sent only if the in-app item is still unread "
                f"after {after.total_seconds():g}s",
                escalation_of=in_app.delivery_id,
            )
            for item in viable
        ]

    async def _collapsed_into(
        self, notification: Notification, template: TemplateVersion, now: datetime
    ) -> str | None:
        request = notification.request
        window = request.collapse_window_seconds or template.body.get("collapse_window_seconds")
        if not request.collapse_key or not window:
            return None
        return await self._ledger.collapsed_into(
            request.user_id, request.collapse_key, window, notification.id, now
        )

    def _when(
        self, channel: Channel, user: User, request: NotificationRequest, now: datetime
    ) -> tuple[datetime, str | None]:
        """When the delivery may go, and why later than now: send_at, or the user's quiet
        hours on an interruptive channel (critical priority goes through quiet hours)."""
        due = max(now, request.send_at or now)
        reason = f"scheduled for send_at {due.isoformat()}" if due > now else None
        quiet = user.quiet_hours
        if (
            quiet is None
            or channel not in self._settings.quiet_channels
            or request.priority is Priority.CRITICAL
        ):
            return due, reason
        zone_name = user.timezone or "UTC"
        window_end = quiet_hours_end(due, quiet, ZoneInfo(zone_name))
        if window_end is None:
            return due, reason
        release = release_time(window_end, self._settings.quiet_spread_seconds, random.random())
        return release, (
            f"quiet hours {quiet.start}-{quiet.end} ({zone_name}); "
            f"released at {release.isoformat(timespec='seconds')}"
        )

    def _context(
        self,
        notification: Notification,
        user: User | None,
        compiled: CompiledTemplate,
        category: Category,
        now: datetime,
    ) -> dict[str, Any]:
        request = notification.request
        # Signing links costs two HMACs; only templates that show them pay for them.
        uses_links = not compiled.variables.isdisjoint(_LINK_NAMES)
        links = (
            self._links.for_user(request.user_id, category.value, now)
            if uses_links or category is Category.MARKETING
            else {}
        )
        return {
            "payload": request.payload,
            "user": user.template_view() if user else {},
            "notification": {
                "id": notification.id,
                "event_id": request.event_id,
                "template": request.template,
            },
            **links,
        }


def with_opt_out(text: str) -> str:
    """Marketing texts end with how to stop them (carriers and the TCPA ask for it)."""
    return text if "STOP" in text.upper() else f"{text.rstrip()} Reply STOP to opt out."


def one_click_unsubscribe(url: str) -> dict[str, str]:
    """The RFC 8058 headers: mail clients show an unsubscribe button that POSTs to ``url``."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
