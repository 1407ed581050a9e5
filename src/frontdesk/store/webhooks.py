"""Webhook endpoints (where a user, a customer account, wants its events posted), the messages
queued for them and the attempts made.

Signing secrets and client keys arrive here already sealed (see secret_box.py): the store never
holds one in the clear.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from frontdesk.core.models import AuditEntry
from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import audit_to_row

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


class WebhookRecords(StoreBase):
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

    async def webhook_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        e = t.webhook_endpoints
        async with self._engines.reader.connect() as connection:
            row = (await connection.execute(select(e).where(e.c.id == endpoint_id))).mappings()
            found = row.first()
        return dict(found) if found else None

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

    # Messages to endpoints: one per webhook delivery and endpoint, each its endpoint's queue
    # entry, claimed by lease; and the attempts made at each.

    async def endpoints_for_event(self, user_id: str, event_type: str) -> list[dict[str, Any]]:
        """The user's enabled endpoints that take this event type (an empty filter takes all)."""
        return [
            endpoint
            for endpoint in await self.list_webhook_endpoints(user_id)
            if endpoint["enabled"]
            and (not endpoint["event_types"] or event_type in endpoint["event_types"])
        ]

    async def enqueue_webhook_messages(self, messages: list[dict[str, Any]]) -> list[str]:
        """Queue messages; a replayed delivery finds its messages there and adds none. The ids
        of the delivery's messages, new or already there."""
        if not messages:
            return []
        now = self._clock.now()
        rows = [
            {
                **message,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_status_code": None,
                "last_error": None,
                "created_at": now,
                "updated_at": now,
            }
            for message in messages
        ]
        m = t.webhook_messages
        async with self._engines.write() as connection:
            await connection.execute(
                self._insert(m)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["delivery_id", "endpoint_id"])
            )
            ids = await connection.scalars(
                select(m.c.id)
                .where(m.c.delivery_id == messages[0]["delivery_id"])
                .order_by(m.c.created_at, m.c.id)
            )
            return list(ids)

    async def claim_webhook_messages(
        self, limit: int, lease_seconds: float, skip_endpoints: Collection[str]
    ) -> list[dict[str, Any]]:
        """Lease due messages of enabled endpoints, oldest first, leaving out ``skip_endpoints``
        (those already busy to their limit, or whose circuit is open): one slow endpoint never
        holds up the others. A message whose lease ran out (its process died) is due again."""
        now = self._clock.now()
        m, e = t.webhook_messages, t.webhook_endpoints
        due = (
            select(m.c.id)
            .join(e, e.c.id == m.c.endpoint_id)
            .where(
                e.c.enabled.is_(True),
                ((m.c.status == "pending") & (m.c.next_attempt_at <= now))
                | ((m.c.status == "sending") & (m.c.lease_until < now)),
            )
            .order_by(m.c.next_attempt_at)
            .limit(limit)
        )
        if skip_endpoints:
            due = due.where(m.c.endpoint_id.not_in(sorted(skip_endpoints)))
        if self._engines.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True, of=m)
        async with self._engines.write() as connection:
            rows = await connection.execute(
                update(m)
                .where(m.c.id.in_(due.scalar_subquery()))
                .values(
                    status="sending",
                    attempts=m.c.attempts + 1,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    updated_at=now,
                )
                .returning(*m.c)
            )
            return [dict(row) for row in rows.mappings()]

    async def record_webhook_attempt(
        self,
        message: dict[str, Any],
        attempt: dict[str, Any],
        *,
        next_attempt_at: datetime | None,
        endpoint_failing: bool,
        disable_endpoint: str | None,
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """One attempt and what follows from it, in one commit: the message succeeded, waits
        for ``next_attempt_at``, or failed for good; the endpoint's failing streak starts or
        ends; an endpoint may be disabled (410 Gone, or failing for too long), audited."""
        now = self._clock.now()
        m, e = t.webhook_messages, t.webhook_endpoints
        succeeded = attempt["status_code"] is not None and 200 <= attempt["status_code"] < 300
        status = "succeeded" if succeeded else "pending" if next_attempt_at else "failed"
        async with self._engines.write() as connection:
            await connection.execute(
                t.webhook_attempts.insert().values(
                    message_id=message["id"], endpoint_id=message["endpoint_id"], **attempt
                )
            )
            await connection.execute(
                update(m)
                .where(m.c.id == message["id"], m.c.attempts == message["attempts"])
                .values(
                    status=status,
                    next_attempt_at=next_attempt_at or message["next_attempt_at"],
                    lease_until=None,
                    last_status_code=attempt["status_code"],
                    last_error=attempt["error"],
                    updated_at=now,
                )
            )
            endpoint = update(e).where(e.c.id == message["endpoint_id"])
            if not endpoint_failing:
                await connection.execute(endpoint.values(failing_since=None))
            else:
                await connection.execute(
                    endpoint.where(e.c.failing_since.is_(None)).values(failing_since=now)
                )
            if disable_endpoint:
                await connection.execute(
                    endpoint.values(enabled=False, disabled_reason=disable_endpoint, updated_at=now)
                )
            await self._driver.insert(
                connection, t.audit_entries, [audit_to_row(entry) for entry in audit]
            )

    async def list_webhook_attempts(
        self, endpoint_id: str, after_seq: int | None, limit: int
    ) -> list[dict[str, Any]]:
        a = t.webhook_attempts
        query = select(a).where(a.c.endpoint_id == endpoint_id).order_by(a.c.seq).limit(limit)
        if after_seq is not None:
            query = query.where(a.c.seq > after_seq)
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def list_webhook_messages(
        self, endpoint_id: str, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        m = t.webhook_messages
        query = (
            select(m).where(m.c.endpoint_id == endpoint_id).order_by(m.c.created_at).limit(limit)
        )
        if status:
            query = query.where(m.c.status == status)
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def resend_webhook_messages(
        self, endpoint_id: str, *, message_id: str | None = None, since: datetime | None = None
    ) -> int:
        """Queue again, at once, one message (whatever its status) or every failed message of
        the endpoint created since ``since``. They keep their ids: receivers that already
        processed one recognise it."""
        now = self._clock.now()
        m = t.webhook_messages
        which = m.c.endpoint_id == endpoint_id
        if message_id is not None:
            which &= m.c.id == message_id
        else:
            which &= (m.c.status == "failed") & (m.c.created_at >= since)
        async with self._engines.write() as connection:
            resent = await connection.execute(
                update(m)
                .where(which, m.c.status != "sending")
                .values(status="pending", next_attempt_at=now, lease_until=None, updated_at=now)
            )
        return int(resent.rowcount or 0)
