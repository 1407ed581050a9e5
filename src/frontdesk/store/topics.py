"""Topics and broadcasts: subscribers, and the fan-out of one notification to all of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from frontdesk.core.models import Actor, AuditEntry, AuditType
from frontdesk.core.ports import Admission, AdmissionResult
from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.notifications import NotificationRecords
from frontdesk.store.rows import audit_to_row


class TopicRecords(NotificationRecords):
    async def add_subscribers(self, topic: str, user_ids: Sequence[str]) -> None:
        now = self._clock.now()
        async with self._engines.write() as connection:
            await self._driver.insert(
                connection,
                t.topic_subscribers,
                [{"topic": topic, "user_id": u, "created_at": now} for u in sorted(set(user_ids))],
                ignore_conflicts=True,
            )

    async def remove_subscribers(self, topic: str, user_ids: Sequence[str]) -> int:
        async with self._engines.write() as connection:
            removed = await connection.execute(
                delete(t.topic_subscribers).where(
                    t.topic_subscribers.c.topic == topic,
                    t.topic_subscribers.c.user_id.in_(sorted(set(user_ids))),
                )
            )
        return int(removed.rowcount or 0)

    async def count_subscribers(self, topic: str) -> int:
        async with self._engines.reader.connect() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(t.topic_subscribers)
                .where(t.topic_subscribers.c.topic == topic)
            )
        return int(count or 0)

    async def subscribers_after(self, topic: str, cursor: str | None, limit: int) -> list[str]:
        s = t.topic_subscribers
        query = select(s.c.user_id).where(s.c.topic == topic).order_by(s.c.user_id).limit(limit)
        if cursor is not None:
            query = query.where(s.c.user_id > cursor)
        async with self._engines.reader.connect() as connection:
            return list(await connection.scalars(query))

    async def admit_broadcast(
        self, broadcast: dict[str, Any], dedupe_key: str, payload_hash: str, expires_at: datetime
    ) -> AdmissionResult:
        """Store a broadcast under its idempotency key (topic, template, event_id)."""
        now = self._clock.now()
        async with self._engines.write() as connection:
            known = (await self._live_keys(connection, [dedupe_key], now)).get(dedupe_key)
            if known is not None:
                outcome = "duplicate" if known[1] == payload_hash else "conflict"
                return AdmissionResult(known[0], outcome)
            await connection.execute(delete(t.dedupe_keys).where(t.dedupe_keys.c.key == dedupe_key))
            await connection.execute(
                t.dedupe_keys.insert().values(
                    key=dedupe_key,
                    notification_id=broadcast["id"],
                    payload_hash=payload_hash,
                    expires_at=expires_at,
                )
            )
            await connection.execute(t.broadcasts.insert().values(**broadcast))
            await connection.execute(
                t.audit_entries.insert().values(
                    **audit_to_row(
                        AuditEntry(
                            id=new_id(Prefix.AUDIT),
                            at=now,
                            type=AuditType.BROADCAST_ACCEPTED,
                            actor=Actor.API,
                            reason=f"to topic {broadcast['topic']}",
                        )
                    )
                )
            )
        return AdmissionResult(broadcast["id"], "accepted")

    async def claim_broadcast(self, lease_seconds: float) -> dict[str, Any] | None:
        """Lease the oldest broadcast not yet fanned out to every subscriber."""
        now = self._clock.now()
        b = t.broadcasts
        pending = (
            select(b.c.id)
            .where(b.c.completed_at.is_(None))
            .where((b.c.lease_until.is_(None)) | (b.c.lease_until < now))
            .order_by(b.c.created_at)
            .limit(1)
        )
        if self._engines.dialect == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        async with self._engines.write() as connection:
            row = (
                (
                    await connection.execute(
                        update(b)
                        .where(b.c.id.in_(pending))
                        .values(lease_until=now + timedelta(seconds=lease_seconds))
                        .returning(*b.c)
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def save_fanout_chunk(
        self,
        broadcast_id: str,
        admissions: Sequence[Admission],
        cursor: str | None,
        done: bool,
        lease_seconds: float,
    ) -> list[AdmissionResult]:
        """One chunk's notifications and the broadcast's new cursor, in one commit."""
        now = self._clock.now()
        async with self._engines.write() as connection:
            results = await self._admit_batch(connection, admissions) if admissions else []
            await connection.execute(
                update(t.broadcasts)
                .where(t.broadcasts.c.id == broadcast_id)
                .values(
                    cursor=cursor,
                    fanned_out=t.broadcasts.c.fanned_out + len(admissions),
                    lease_until=now + timedelta(seconds=lease_seconds),
                    completed_at=now if done else None,
                )
            )
        return results

    async def get_broadcast(self, broadcast_id: str) -> dict[str, Any]:
        async with self._engines.reader.connect() as connection:
            row = (
                (
                    await connection.execute(
                        select(t.broadcasts).where(t.broadcasts.c.id == broadcast_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id!r}")
        return dict(row)
