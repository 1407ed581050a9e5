"""Admitting notifications under their idempotency keys, reading them back, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.core.models import (
    Actor,
    AuditEntry,
    AuditType,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationStatus,
)
from frontdesk.core.ports import Admission, AdmissionResult
from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import audit_to_row, notification_from_row

# Deliveries a cap did not count: they never went out because a rule stopped them.
_NOT_LET_THROUGH = ("skipped", "suppressed", "collapsed")


class NotificationRecords(StoreBase):
    async def admit(self, admissions: Sequence[Admission]) -> list[AdmissionResult]:
        """Store new notifications with their event; a known key is a duplicate or a conflict.

        Returns only after the commit: "accepted" means durable.
        """
        return await self._committer.submit_many("admit", list(admissions))

    async def _admit_batch(
        self, connection: AsyncConnection, admissions: Sequence[Admission]
    ) -> list[AdmissionResult]:
        now = self._clock.now()
        known = await self._live_keys(connection, [a.dedupe_key for a in admissions], now)
        results: list[AdmissionResult] = []
        fresh: list[Admission] = []
        for admission in admissions:
            seen = known.get(admission.dedupe_key)
            if seen is None:
                known[admission.dedupe_key] = (admission.notification.id, admission.payload_hash)
                fresh.append(admission)
                results.append(AdmissionResult(admission.notification.id, "accepted"))
            else:
                same = seen[1] == admission.payload_hash
                results.append(AdmissionResult(seen[0], "duplicate" if same else "conflict"))
        if fresh:
            await connection.execute(
                delete(t.dedupe_keys).where(
                    t.dedupe_keys.c.key.in_([a.dedupe_key for a in fresh]),
                    t.dedupe_keys.c.expires_at <= now,
                )
            )
            await self._driver.insert(
                connection,
                t.dedupe_keys,
                [
                    {
                        "key": a.dedupe_key,
                        "notification_id": a.notification.id,
                        "payload_hash": a.payload_hash,
                        "expires_at": a.dedupe_expires_at,
                    }
                    for a in fresh
                ],
                ignore_conflicts=True,
            )
            fresh = await self._keep_uncontested(connection, fresh, results, now)
            await self._driver.insert(
                connection,
                t.notifications,
                [
                    {
                        "id": a.notification.id,
                        "user_id": a.notification.request.user_id,
                        "template_id": a.notification.request.template,
                        "template_version": a.notification.template_version,
                        "event_id": a.notification.request.event_id,
                        "request": a.notification.request.to_json(),
                        "collapse_key": a.notification.request.collapse_key,
                        "lane": a.lane,
                        "broadcast_id": a.broadcast_id,
                        "created_at": a.notification.created_at,
                    }
                    for a in fresh
                ],
            )
        audit = [
            AuditEntry(
                id=new_id(Prefix.AUDIT),
                at=now,
                type=AuditType.ACCEPTED if result.outcome == "accepted" else AuditType.DUPLICATE,
                actor=Actor.API,
                notification_id=result.notification_id,
                user_id=admission.notification.request.user_id,
                reason=None
                if result.outcome == "accepted"
                else "same user, template and event_id within the dedupe window",
            )
            for admission, result in zip(admissions, results, strict=True)
            if result.outcome != "conflict"
        ]
        await self._driver.insert(connection, t.audit_entries, [audit_to_row(a) for a in audit])
        return results

    async def _keep_uncontested(
        self,
        connection: AsyncConnection,
        fresh: list[Admission],
        results: list[AdmissionResult],
        now: datetime,
    ) -> list[Admission]:
        """Another process may have admitted some of these keys since we looked (PostgreSQL);
        those admissions become duplicates or conflicts of the winner."""
        owners = await self._live_keys(connection, [a.dedupe_key for a in fresh], now)
        kept = []
        for admission in fresh:
            owner_id, owner_hash = owners[admission.dedupe_key]
            if owner_id == admission.notification.id:
                kept.append(admission)
                continue
            outcome = "duplicate" if owner_hash == admission.payload_hash else "conflict"
            index = results.index(AdmissionResult(admission.notification.id, "accepted"))
            results[index] = AdmissionResult(owner_id, outcome)
        return kept

    async def _live_keys(
        self, connection: AsyncConnection, keys: list[str], now: datetime
    ) -> dict[str, tuple[str, str]]:
        live: dict[str, tuple[str, str]] = {}
        for chunk in self._chunks(sorted(set(keys))):
            query = select(t.dedupe_keys).where(
                t.dedupe_keys.c.key.in_(chunk), t.dedupe_keys.c.expires_at > now
            )
            if self._engines.dialect == "postgresql":
                # Lock the keys so a concurrent admission of the same key waits for our commit.
                query = query.with_for_update()
            for row in await connection.execute(query):
                live[row.key] = (row.notification_id, row.payload_hash)
        return live

    async def purge_expired_dedupe_keys(self, now: datetime) -> int:
        async with self._engines.write() as connection:
            result = await connection.execute(
                delete(t.dedupe_keys).where(t.dedupe_keys.c.expires_at <= now)
            )
        return int(result.rowcount or 0)

    async def get_notification(self, notification_id: str) -> dict[str, Any]:
        async with self._engines.reader.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(t.notifications).where(t.notifications.c.id == notification_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(f"no notification {notification_id!r}")
            deliveries = (
                (
                    await connection.execute(
                        select(t.deliveries)
                        .where(t.deliveries.c.notification_id == notification_id)
                        .order_by(t.deliveries.c.created_at, t.deliveries.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return {"notification": dict(row), "deliveries": [dict(d) for d in deliveries]}

    async def search_notifications(
        self,
        *,
        user_id: str | None,
        template_id: str | None,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Notifications matching every criterion given, newest first, from just before
        ``before`` (the last of the page before). ``status`` is the notification's own
        (accepted, processing, completed) or any of its deliveries' (so "dead" finds every
        notification with a dead delivery)."""
        n, d = t.notifications, t.deliveries
        pending = [s.value for s in DeliveryStatus if not s.is_terminal]

        def having(*conditions: Any) -> Any:
            """Whether the notification has a delivery meeting ``conditions``."""
            return select(d.c.id).where(d.c.notification_id == n.c.id, *conditions).exists()

        query = select(n.c.id, n.c.created_at).order_by(n.c.created_at.desc(), n.c.id.desc())
        if user_id:
            query = query.where(n.c.user_id == user_id)
        if template_id:
            query = query.where(n.c.template_id == template_id)
        if since is not None:
            query = query.where(n.c.created_at >= since)
        if until is not None:
            query = query.where(n.c.created_at < until)
        if before is not None:
            query = query.where(tuple_(n.c.created_at, n.c.id) < tuple_(*before))

        if status == NotificationStatus.ACCEPTED:
            query = query.where(n.c.orchestrated_at.is_(None))
        elif status == NotificationStatus.PROCESSING:
            query = query.where(n.c.orchestrated_at.is_not(None), having(d.c.status.in_(pending)))
        elif status == NotificationStatus.COMPLETED:
            query = query.where(n.c.orchestrated_at.is_not(None), ~having(d.c.status.in_(pending)))
        elif status:
            query = query.where(having(d.c.status == status))
        async with self._engines.reader.connect() as connection:
            rows = (await connection.execute(query.limit(limit))).all()
        return [await self.get_notification(row.id) for row in rows]

    async def notifications_lacking(
        self,
        channel: Channel,
        since: datetime,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Notification]:
        """Orchestrated events of [since, until) that have no delivery on ``channel``, in the
        order they were accepted, from just after ``after`` (the last one of the page before)."""
        n, d = t.notifications, t.deliveries
        has_one = (
            select(d.c.id)
            .where(d.c.notification_id == n.c.id, d.c.channel == channel.value)
            .exists()
        )
        query = (
            select(n.c.id, n.c.request, n.c.template_version, n.c.created_at)
            .where(n.c.orchestrated_at.is_not(None), n.c.created_at >= since, ~has_one)
            .order_by(n.c.created_at, n.c.id)
            .limit(limit)
        )
        if until is not None:
            query = query.where(n.c.created_at < until)
        if after is not None:
            query = query.where(tuple_(n.c.created_at, n.c.id) > tuple_(*after))
        async with self._engines.reader.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [notification_from_row(row) for row in rows]

    async def audit_for_notification(self, notification_id: str) -> list[dict[str, Any]]:
        async with self._engines.reader.connect() as connection:
            rows = await connection.execute(
                select(t.audit_entries)
                .where(t.audit_entries.c.notification_id == notification_id)
                .order_by(t.audit_entries.c.seq)
            )
            return [dict(row) for row in rows.mappings()]

    async def search_audit(
        self,
        *,
        user_id: str | None,
        since: datetime | None,
        until: datetime | None,
        type_: str | None,
        after_seq: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        a = t.audit_entries
        query = select(a).order_by(a.c.seq).limit(limit)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        if since is not None:
            query = query.where(a.c.at >= since)
        if until is not None:
            query = query.where(a.c.at < until)
        if type_ is not None:
            query = query.where(a.c.type == type_)
        if after_seq is not None:
            query = query.where(a.c.seq > after_seq)
        async with self._engines.reader.connect() as connection:
            rows = await connection.execute(query)
            return [dict(row) for row in rows.mappings()]

    async def recent_activity(
        self, user_ids: list[str], since: datetime
    ) -> tuple[list[tuple[str, str, str, datetime]], list[tuple[str, str, str, datetime]]]:
        """What frequency caps and collapse keys count, for these users since ``since``:
        deliveries let through as (user, channel, category, at) and notifications with a
        collapse key as (user, collapse key, notification id, at)."""
        d, n = t.deliveries, t.notifications
        sends: list[tuple[str, str, str, datetime]] = []
        keyed: list[tuple[str, str, str, datetime]] = []
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(sorted(set(user_ids))):
                rows = await connection.execute(
                    select(d.c.user_id, d.c.channel, d.c.category, d.c.created_at).where(
                        d.c.user_id.in_(chunk),
                        d.c.created_at >= since,
                        d.c.status.not_in(_NOT_LET_THROUGH),
                    )
                )
                sends.extend((r.user_id, r.channel, r.category, r.created_at) for r in rows)
                rows = await connection.execute(
                    select(n.c.user_id, n.c.collapse_key, n.c.id, n.c.created_at).where(
                        n.c.user_id.in_(chunk),
                        n.c.created_at >= since,
                        n.c.collapse_key.is_not(None),
                    )
                )
                keyed.extend((r.user_id, r.collapse_key, r.id, r.created_at) for r in rows)
        return sends, keyed

    async def user_history(self, user_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """The user's notifications, newest first, each with its deliveries (for export)."""
        n, d = t.notifications, t.deliveries
        async with self._engines.reader.connect() as connection:
            notifications = (
                (
                    await connection.execute(
                        select(n.c.id, n.c.template_id, n.c.event_id, n.c.created_at)
                        .where(n.c.user_id == user_id)
                        .order_by(n.c.created_at.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
            deliveries = (
                (
                    await connection.execute(
                        select(
                            d.c.id,
                            d.c.notification_id,
                            d.c.channel,
                            d.c.status,
                            d.c.reason,
                            d.c.updated_at,
                        ).where(d.c.user_id == user_id)
                    )
                )
                .mappings()
                .all()
            )
        by_notification: dict[str, list[dict[str, Any]]] = {}
        for delivery in deliveries:
            by_notification.setdefault(delivery["notification_id"], []).append(dict(delivery))
        return [{**row, "deliveries": by_notification.get(row["id"], [])} for row in notifications]
