"""Webhook endpoints: where a user (a customer account) wants its events posted.

Signing secrets and client keys arrive here already sealed (see secret_box.py): the store never
holds one in the clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase

_MUTABLE = frozenset(
    {
        "url",
        "description",
        "event_types",
        "enabled",
        "rate_per_second",
        "timeout_seconds",
        "headers",
        "client_certificate",
        "client_key_sealed",
    }
)


class WebhookEndpointRecords(StoreBase):
    async def create_webhook_endpoint(
        self, user_id: str, fields: dict[str, Any], sealed_secret: str
    ) -> dict[str, Any]:
        now = self._clock.now()
        row = {
            "id": new_id(Prefix.WEBHOOK_ENDPOINT),
            "user_id": user_id,
            "url": fields["url"],
            "description": fields.get("description"),
            "event_types": fields.get("event_types") or [],
            "enabled": fields.get("enabled", True),
            "disabled_reason": None,
            "signature": fields.get("signature", "v1"),
            "secrets": [{"sealed": sealed_secret, "created_at": now.isoformat()}],
            "rate_per_second": fields.get("rate_per_second"),
            "timeout_seconds": fields.get("timeout_seconds"),
            "headers": fields.get("headers") or {},
            "client_certificate": fields.get("client_certificate"),
            "client_key_sealed": fields.get("client_key_sealed"),
            "failing_since": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self._engines.write() as connection:
            await connection.execute(t.webhook_endpoints.insert().values(**row))
        return row

    async def list_webhook_endpoints(self, user_id: str) -> list[dict[str, Any]]:
        e = t.webhook_endpoints
        async with self._engines.reader.connect() as connection:
            rows = await connection.execute(
                select(e).where(e.c.user_id == user_id).order_by(e.c.created_at, e.c.id)
            )
            return [dict(row) for row in rows.mappings()]

    async def get_webhook_endpoint(self, user_id: str, endpoint_id: str) -> dict[str, Any]:
        e = t.webhook_endpoints
        async with self._engines.reader.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(e).where(e.c.user_id == user_id, e.c.id == endpoint_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"user {user_id!r} has no webhook endpoint {endpoint_id!r}")
        return dict(row)

    async def update_webhook_endpoint(
        self, user_id: str, endpoint_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply ``changes``; enabling an endpoint clears why it was disabled and its record
        of failing."""
        values = {key: value for key, value in changes.items() if key in _MUTABLE}
        if values.get("enabled") is True:
            values |= {"disabled_reason": None, "failing_since": None}
        elif values.get("enabled") is False:
            values["disabled_reason"] = "disabled through the API"
        e = t.webhook_endpoints
        async with self._engines.write() as connection:
            changed = await connection.execute(
                update(e)
                .where(e.c.user_id == user_id, e.c.id == endpoint_id)
                .values(updated_at=self._clock.now(), **values)
            )
        if not changed.rowcount:
            raise NotFound(f"user {user_id!r} has no webhook endpoint {endpoint_id!r}")
        return await self.get_webhook_endpoint(user_id, endpoint_id)

    async def rotate_webhook_secret(
        self, user_id: str, endpoint_id: str, sealed_secret: str, retire_at: datetime
    ) -> None:
        """The new secret signs from now on; the current ones keep signing beside it until
        ``retire_at``, so that receivers can switch in their own time."""
        endpoint = await self.get_webhook_endpoint(user_id, endpoint_id)
        now = self._clock.now()
        still_valid = [
            {**secret, "retires_at": secret.get("retires_at") or retire_at.isoformat()}
            for secret in endpoint["secrets"]
            if not secret.get("retires_at") or datetime.fromisoformat(secret["retires_at"]) > now
        ]
        secrets = [{"sealed": sealed_secret, "created_at": now.isoformat()}, *still_valid]
        e = t.webhook_endpoints
        async with self._engines.write() as connection:
            await connection.execute(
                update(e).where(e.c.id == endpoint_id).values(secrets=secrets, updated_at=now)
            )

    async def delete_webhook_endpoint(self, user_id: str, endpoint_id: str) -> None:
        e = t.webhook_endpoints
        async with self._engines.write() as connection:
            removed = await connection.execute(
                delete(e).where(e.c.user_id == user_id, e.c.id == endpoint_id)
            )
        if not removed.rowcount:
            raise NotFound(f"user {user_id!r} has no webhook endpoint {endpoint_id!r}")
