"""How stored records are shown: RFC 3339 UTC times, contract field names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from frontdesk.api.problems import Problem
from frontdesk.core.models import ApiKey, Channel, DeliveryStatus, NotificationStatus
from frontdesk.core.times import rfc3339


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


def api_key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(key.scopes),
        "created_at": rfc3339(key.created_at),
        "revoked_at": rfc3339(key.revoked_at) if key.revoked_at else None,
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


# The answers above, as the OpenAPI document describes them. A route that declares one as its
# response_model has its answer checked against it on the way out.
Rfc3339 = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class _Shown(BaseModel):
    # A field a view has and its model lacks is still sent, never trimmed; clients are told to
    # expect more fields than described.
    model_config = ConfigDict(extra="allow")


class ApiKeyView(_Shown):
    id: str
    name: str | None
    scopes: list[str]
    created_at: Rfc3339
    revoked_at: Rfc3339 | None


class NewApiKey(ApiKeyView):
    key: str = Field(description="The key itself: shown only now, only its hash is kept")


class ApiKeys(_Shown):
    items: list[ApiKeyView]


class DeviceView(_Shown):
    token: str
    provider: str
    created_at: Rfc3339


class UserView(_Shown):
    id: str
    email: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    name: str | None
    properties: dict[str, Any]
    quiet_hours: dict[str, str] | None
    consent: dict[str, bool]
    devices: list[DeviceView]
    created_at: Rfc3339
    updated_at: Rfc3339


class DeliveryView(_Shown):
    id: str
    channel: Channel
    provider: str | None
    provider_message_id: str | None
    details: dict[str, Any]
    status: DeliveryStatus
    reason: str | None = Field(description="Why the delivery did not go out, when it did not")
    attempts: int
    last_error: str | None
    updated_at: Rfc3339


class NotificationView(_Shown):
    id: str
    user_id: str
    template: str
    template_version: int
    event_id: str
    status: NotificationStatus
    created_at: Rfc3339
    deliveries: list[DeliveryView]


class AuditEntryView(_Shown):
    id: str
    at: Rfc3339
    type: str
    notification_id: str | None
    delivery_id: str | None
    channel: str | None
    user_id: str | None
    actor: str
    reason: str | None


class AuditEntries(_Shown):
    items: list[AuditEntryView]


class AuditPage(AuditEntries):
    next_cursor: str | None


class InboxItemView(_Shown):
    id: str
    notification_id: str
    title: str
    body: str
    action_url: str | None
    created_at: Rfc3339
    seen_at: Rfc3339 | None
    read_at: Rfc3339 | None
    archived_at: Rfc3339 | None


class InboxPage(_Shown):
    items: list[InboxItemView]
    unread_count: int
    next_cursor: str | None


class InboxToken(_Shown):
    token: str = Field(description="Send as 'Authorization: Bearer <token>' to the inbox routes")
    expires_at: Rfc3339


class TemplateVersionCreated(_Shown):
    template_id: str
    version: int
    etag: str


class SandboxMessageView(_Shown):
    id: str
    delivery_id: str
    notification_id: str
    channel: Channel
    provider: Literal["sandbox"]
    to: str | None
    content: dict[str, Any]
    headers: dict[str, Any]
    created_at: Rfc3339


class SandboxMessages(_Shown):
    items: list[SandboxMessageView]
    next_cursor: str | None


class NotificationAccepted(_Shown):
    id: str = Field(description="The notification's id; for a repeat, the original's")
    status: Literal["accepted"]
    duplicate: bool


class NotificationRejected(_Shown):
    status: Literal["rejected"]
    error: Problem


class BatchResults(_Shown):
    results: list[
        Annotated[NotificationAccepted | NotificationRejected, Field(discriminator="status")]
    ] = Field(description="One per notification sent, in order")
