"""Who gets what, on which channel: pure functions over explicit inputs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from frontdesk.core.models import (
    Category,
    Channel,
    DeliveryStatus,
    Device,
    Preferences,
    Priority,
    QuietHours,
    SuppressionKind,
    User,
)

SMS_MARKETING_CONSENT = "sms_marketing"


def select_channels(
    template_channels: Sequence[str], requested: Sequence[Channel] | None
) -> list[Channel]:
    """The request's channels, or every channel the template defines, in the template's order."""
    ordered = [Channel(name) for name in template_channels]
    if requested is None:
        return ordered
    wanted = set(requested)
    return [channel for channel in ordered if channel in wanted]


def contact_point(user: User, channel: Channel) -> tuple[str | None, str | None]:
    """(address to send to, None) or (None, why the user cannot be reached on this channel)."""
    if channel is Channel.EMAIL:
        return (user.email, None) if user.email else (None, "the user has no email address")
    if channel is Channel.SMS:
        return (user.phone, None) if user.phone else (None, "the user has no phone number")
    if channel is Channel.PUSH:
        if not user.devices:
            return None, "the user has no registered device"
        return _devices_json(user.devices), None
    # In-app: the user's own inbox. Webhook: the user's own endpoints, those that take the
    # event's type, found when sending.
    return user.id, None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


def decide(
    preferences: Preferences,
    consent: Mapping[str, bool],
    *,
    category: Category,
    template_id: str,
    channel: Channel,
    priority: Priority,
) -> Decision:
    """May this notification go out on this channel? The reason names the rule that decided.

    The most specific rule wins: the template's, then the category's, then the channel's, then
    the category default. What the law or the user's own unsubscribe decides comes first and
    is never bypassed, not even by ``critical`` priority.
    """
    unsubscribe = f"{category.value}.{channel.value}"
    if unsubscribe in preferences.unsubscribed and category is not Category.TRANSACTIONAL:
        return Decision(False, f"the user unsubscribed from {category.value} on {channel.value}")
    if (
        category is Category.MARKETING
        and channel is Channel.SMS
        and not consent.get(SMS_MARKETING_CONSENT, False)
    ):
        return Decision(False, "marketing SMS needs recorded consent (consent.sms_marketing)")
    if priority is Priority.CRITICAL:
        return Decision(True, "critical priority bypasses preferences")
    rules = (
        (preferences.templates.get(template_id, {}), f"templates.{template_id}.{channel.value}"),
        (
            preferences.categories.get(category.value, {}),
            f"categories.{category.value}.{channel.value}",
        ),
        (preferences.channels, f"channels.{channel.value}"),
    )
    for rule, name in rules:
        if channel.value in rule:
            allowed = bool(rule[channel.value])
            verdict = "opted in" if allowed else "opted out"
            return Decision(allowed, f"{verdict} by the preference {name}")
    return Decision(True, f"{category.value} notifications are opted in by default")


@dataclass(frozen=True, slots=True)
class Screening:
    """The verdict on one channel before anything is rendered or sent: go ahead to
    ``recipient``, or end with ``status`` (skipped, suppressed) for ``reason``."""

    recipient: str | None
    status: DeliveryStatus | None
    reason: str


def addresses(user: User) -> list[tuple[str, str]]:
    """Every (channel, address) of the user that the suppression list could hold."""
    found = [(Channel.PUSH.value, device.token) for device in user.devices]
    if user.email:
        found.append((Channel.EMAIL.value, user.email))
    if user.phone:
        found.append((Channel.SMS.value, user.phone))
    return found


def screen(
    user: User,
    channel: Channel,
    *,
    category: Category,
    template_id: str,
    priority: Priority,
    suppressed: Mapping[tuple[str, str], SuppressionKind],
) -> Screening:
    """Reachable, not suppressed, and wanted? Applied when orchestrating and again just before
    sending, so an opt-out or a suppression also stops what is already queued.

    ``suppressed`` holds the user's addresses that are on the list: suppressed (bounced,
    complained, put there by an operator), or opted out by their owner (an SMS STOP), which
    skips rather than suppresses: it is the recipient's own choice, like a preference."""
    recipient, unreachable = contact_point(user, channel)
    if recipient is None:
        return Screening(None, DeliveryStatus.SKIPPED, unreachable or "unreachable")
    if channel is Channel.PUSH:
        devices = [d for d in user.devices if (channel.value, d.token) not in suppressed]
        if not devices:
            return Screening(
                None, DeliveryStatus.SUPPRESSED, "every device token is on the suppression list"
            )
        recipient = _devices_json(devices)
    elif (kind := suppressed.get((channel.value, recipient))) is SuppressionKind.OPTED_OUT:
        return Screening(
            None, DeliveryStatus.SKIPPED, f"the {channel.value} address opted out (replied STOP)"
        )
    elif kind is not None:
        return Screening(
            None,
            DeliveryStatus.SUPPRESSED,
            f"the {channel.value} address is on the suppression list",
        )
    decision = decide(
        user.preferences,
        user.consent,
        category=category,
        template_id=template_id,
        channel=channel,
        priority=priority,
    )
    if not decision.allowed:
        return Screening(None, DeliveryStatus.SKIPPED, decision.reason)
    return Screening(recipient, None, decision.reason)


def quiet_hours_end(now: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime | None:
    """When ``now`` falls inside the user's quiet hours (local wall-clock times, possibly
    spanning midnight), the first instant after it that is outside them; else None.

    Computed on wall-clock time in the user's zone, so a window keeps its local meaning across
    daylight-saving changes; an end time that a spring-forward gap skips ends the window at the
    jump itself.
    """
    start, end = _clock_time(quiet.start), _clock_time(quiet.end)
    if start == end:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    spans_midnight = start > end
    inside = (wall >= start or wall < end) if spans_midnight else start <= wall < end
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if spans_midnight and wall >= start else local.date()
    return _first_instant_at_or_after(end_day, end, zone, after=now)


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _first_instant_at_or_after(day: date, wall: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first UTC instant later than ``after`` whose local wall-clock reading on ``day`` is
    ``wall`` or later (an hour that repeats when clocks fall back has two candidates)."""
    naive = datetime.combine(day, wall)
    candidates = sorted(naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    real = [c for c in candidates if c.astimezone(zone).replace(tzinfo=None) == naive]
    if real:
        return next((c for c in real if c > after), real[-1])
    # ``wall`` does not exist that day (a spring-forward gap): the window ends at the jump.
    moment = candidates[0]
    while moment.astimezone(zone).replace(tzinfo=None) < naive:
        moment += timedelta(minutes=1)
    return moment.replace(second=0, microsecond=0)


def release_time(window_end: datetime, spread_seconds: float, draw: float) -> datetime:
    """Spread releases over a few minutes after the window, so that a million deferred
    messages do not all leave in the same second. ``draw`` is uniform in [0, 1)."""
    return window_end + timedelta(seconds=spread_seconds * draw)


def _devices_json(devices: Iterable[Device]) -> str:
    """A push delivery's recipient: every device, with the provider its token belongs to."""
    return json.dumps([{"token": d.token, "provider": d.provider} for d in devices])
