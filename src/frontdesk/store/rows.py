"""Conversions between table rows and domain models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frontdesk.core.models import (
    AuditEntry,
    Category,
    Channel,
    Delivery,
    DeliveryStatus,
    Device,
    InboxItem,
    Notification,
    NotificationRequest,
    Preferences,
    Priority,
    QuietHours,
    TemplateVersion,
    User,
    lane,
)


def notification_from_row(row: Mapping[Any, Any]) -> Notification:
    return Notification(
        id=row["id"],
        request=NotificationRequest.from_json(row["request"]),
        template_version=row["template_version"],
        created_at=row["created_at"],
    )


def user_from_row(row: Mapping[Any, Any], devices: tuple[Device, ...] = ()) -> User:
    quiet = row["quiet_hours"]
    return User(
        id=row["id"],
        email=row["email"],
        phone=row["phone"],
        locale=row["locale"],
        timezone=row["timezone"],
        name=row["name"],
        properties=row["properties"] or {},
        quiet_hours=QuietHours(quiet["start"], quiet["end"]) if quiet else None,
        consent=row["consent"] or {},
        devices=devices,
        preferences=Preferences.from_json(row["preferences"]),
    )


def template_from_row(row: Mapping[Any, Any]) -> TemplateVersion:
    return TemplateVersion(
        template_id=row["template_id"],
        version=row["version"],
        category=Category(row["category"]),
        body=row["body"],
        etag=row["etag"],
        created_at=row["created_at"],
    )


def delivery_to_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "notification_id": delivery.notification_id,
        "user_id": delivery.user_id,
        "channel": delivery.channel.value,
        "template_id": delivery.template_id,
        "category": delivery.category.value,
        "status": delivery.status.value,
        "priority": delivery.priority.value,
        "lane": lane(delivery.priority, delivery.category),
        "recipient": delivery.recipient,
        "content": delivery.content,
        "provider": delivery.provider,
        "provider_message_id": None,
        "reason": delivery.reason,
        "last_error": delivery.last_error,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "available_at": delivery.available_at,
        "lease_until": None,
        "expires_at": delivery.expires_at,
        "sequence": delivery.sequence,
        "escalation_of": delivery.escalation_of,
        "created_at": delivery.created_at,
        "updated_at": delivery.created_at,
    }


def delivery_from_row(row: Mapping[Any, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        notification_id=row["notification_id"],
        user_id=row["user_id"],
        channel=Channel(row["channel"]),
        status=DeliveryStatus(row["status"]),
        priority=Priority(row["priority"]),
        recipient=row["recipient"],
        content=row["content"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        available_at=row["available_at"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        template_id=row["template_id"],
        category=Category(row["category"]),
        provider=row["provider"],
        reason=row["reason"],
        last_error=row["last_error"],
        sequence=row["sequence"],
        escalation_of=row["escalation_of"],
    )


def audit_to_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "type": entry.type.value,
        "actor": entry.actor.value,
        "notification_id": entry.notification_id,
        "delivery_id": entry.delivery_id,
        "channel": entry.channel.value if entry.channel else None,
        "user_id": entry.user_id,
        "reason": entry.reason,
    }


def inbox_item_to_row(item: InboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "user_id": item.user_id,
        "notification_id": item.notification_id,
        "delivery_id": item.delivery_id,
        "title": item.title,
        "body": item.body,
        "action_url": item.action_url,
        "created_at": item.created_at,
        "seen_at": item.seen_at,
        "read_at": item.read_at,
        "archived_at": item.archived_at,
    }
