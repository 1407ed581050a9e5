"""How stored records are shown: RFC 3339 UTC times, contract field names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from frontdesk.core.models import DeliveryStatus, NotificationStatus


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "phone": row["phone"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "name": row["name"],
        "properties": row["properties"],
        "quiet_hours": row["quiet_hours"],
        "consent": row["consent"],
        "devices": [
            {"token": d["token"], "provider": d["provider"], "created_at": rfc3339(d["created_at"])}
            for d in row.get("devices", [])
        ],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def delivery_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "channel": row["channel"],
        "provider": row["provider"],
        "provider_message_id": row["provider_message_id"],
        "details": row["provider_details"] or {},
        "status": row["status"],
        "reason": row["reason"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "updated_at": rfc3339(row["updated_at"]),
    }


def notification_view(found: Mapping[str, Any]) -> dict[str, Any]:
    row, deliveries = found["notification"], found["deliveries"]
    if row["orchestrated_at"] is None:
        status = NotificationStatus.ACCEPTED
    elif all(DeliveryStatus(d["status"]).is_terminal for d in deliveries):
        status = NotificationStatus.COMPLETED
    else:
        status = NotificationStatus.PROCESSING
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "template": row["template_id"],
        "template_version": row["template_version"],
        "event_id": row["event_id"],
        "status": status.value,
        "created_at": rfc3339(row["created_at"]),
        "deliveries": [delivery_view(d) for d in deliveries],
    }


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": rfc3339(row["at"]),
        "type": row["type"],
        "notification_id": row["notification_id"],
        "delivery_id": row["delivery_id"],
        "channel": row["channel"],
        "user_id": row["user_id"],
        "actor": row["actor"],
        "reason": row["reason"],
    }


def inbox_item_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "notification_id": row["notification_id"],
        "title": row["title"],
        "body": row["body"],
        "action_url": row["action_url"],
        "created_at": rfc3339(row["created_at"]),
        "seen_at": rfc3339(row["seen_at"]),
        "read_at": rfc3339(row["read_at"]),
        "archived_at": rfc3339(row["archived_at"]),
    }


def template_view(template: Any) -> dict[str, Any]:
    return {
        "template_id": template.template_id,
        "version": template.version,
        "etag": template.etag,
        "category": template.category.value,
        **template.body,
        "created_at": rfc3339(template.created_at),
    }


def webhook_endpoint_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint as the API shows it: never a secret, and of custom headers only their names
    (their values are often credentials)."""
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "event_types": row["event_types"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "signature": row["signature"],
        "rate_per_second": row["rate_per_second"],
        "timeout_seconds": row["timeout_seconds"],
        "headers": sorted(row["headers"]),
        "mutual_tls": row["client_certificate"] is not None,
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def webhook_attempt_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["seq"]),
        "message_id": row["message_id"],
        "attempt": row["attempt"],
        "at": rfc3339(row["at"]),
        "status_code": row["status_code"],
        "latency_ms": row["latency_ms"],
        "response": row["response"],
        "error": row["error"],
    }


def webhook_message_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "notification_id": row["notification_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": rfc3339(row["next_attempt_at"]),
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created_at": rfc3339(row["created_at"]),
    }
