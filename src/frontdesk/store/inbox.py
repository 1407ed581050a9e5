"""The in-app inbox and the sandbox's record of what would have been sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.core.models import Actor, AuditEntry, AuditType, Channel, DeliveryStatus, InboxItem
from frontdesk.core.ports import SandboxMessage
from frontdesk.errors import NotFound
from frontdesk.ids import Prefix, new_id
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase
from frontdesk.store.rows import audit_to_row, inbox_item_to_row

_VISIBLE_UNREAD = (t.inbox_items.c.read_at.is_(None), t.inbox_items.c.archived_at.is_(None))


class InboxRecords(StoreBase):
    async def add_inbox_items(self, items: Sequence[InboxItem]) -> list[bool]:
        return [bool(added) for added in await self._committer.submit_many("inbox", items)]

    async def _add_inbox_batch(
        self, connection: AsyncConnection, items: Sequence[InboxItem]
    ) -> list[bool]:
        # Unique per delivery: a send repeated after a crash finds its item and adds nothing.
        existing = set(
            await connection.scalars(
                select(t.inbox_items.c.delivery_id).where(
                    t.inbox_items.c.delivery_id.in_([i.delivery_id for i in items])
                )
            )
        )
        added, fresh = [], []
        for item in items:
            is_new = item.delivery_id not in existing
            added.append(is_new)
            if is_new:
                existing.add(item.delivery_id)
                fresh.append(inbox_item_to_row(item))
        await self._driver.insert(connection, t.inbox_items, fresh)
        return added

    async def record_sandbox_messages(self, messages: Sequence[SandboxMessage]) -> None:
        await self._committer.submit_many("sandbox", messages)

    async def _record_sandbox_batch(
        self, connection: AsyncConnection, messages: Sequence[SandboxMessage]
    ) -> list[None]:
        await self._driver.insert(
            connection,
            t.sandbox_messages,
            [
                {
                    "id": m.id,
                    "delivery_id": m.delivery_id,
                    "notification_id": m.notification_id,
                    "channel": m.channel.value,
                    "recipient": m.recipient,
                    "content": m.content,
                    "headers": m.headers,
                    "created_at": m.created_at,
                }
                for m in messages
            ],
            ignore_conflicts=True,
        )
        return [None] * len(messages)

    async def list_sandbox_messages(
        self, channel: str | None, recipient: str | None, after_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        s = t.sandbox_messages
        query = select(s).order_by(s.c.id).limit(limit)
        if channel:
            query = query.where(s.c.channel == channel)
        if recipient:
            query = query.where(s.c.recipient == recipient)
        if after_id:
            query = query.where(s.c.id > after_id)
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def list_inbox(
        self, user_id: str, status: str, before_id: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first; returns (items, unread count)."""
        i = t.inbox_items
        query = select(i).where(i.c.user_id == user_id).order_by(i.c.id.desc()).limit(limit)
        if status == "unread":
            query = query.where(*_VISIBLE_UNREAD)
        elif status == "read":
            query = query.where(i.c.read_at.is_not(None), i.c.archived_at.is_(None))
        elif status == "archived":
            query = query.where(i.c.archived_at.is_not(None))
        if before_id:
            query = query.where(i.c.id < before_id)
        async with self._engines.reader.connect() as connection:
            items = [dict(row) for row in (await connection.execute(query)).mappings()]
            unread = await self._unread_count(connection, user_id)
        return items, unread

    async def inbox_items_after(self, user_id: str, after_id: str | None) -> list[dict[str, Any]]:
        i = t.inbox_items
        query = select(i).where(i.c.user_id == user_id).order_by(i.c.id).limit(500)
        # Without a starting point there is nothing "after": the stream starts from now.
        query = query.where(i.c.id > after_id) if after_id else query.where(false())
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def unread_count(self, user_id: str) -> int:
        async with self._engines.reader.connect() as connection:
            return await self._unread_count(connection, user_id)

    @staticmethod
    async def _unread_count(connection: AsyncConnection, user_id: str) -> int:
        count = await connection.scalar(
            select(func.count())
            .select_from(t.inbox_items)
            .where(t.inbox_items.c.user_id == user_id, *_VISIBLE_UNREAD)
        )
        return int(count or 0)

    async def mark_inbox_items(
        self, user_id: str, item_id: str | None, *, archive: bool, actor: Actor
    ) -> list[dict[str, Any]]:
        """Read (or archive) one item, or every unread item when item_id is None. Reading an
        item moves its in-app delivery to ``read``."""
        now = self._clock.now()
        i = t.inbox_items
        conditions = [i.c.user_id == user_id]
        if item_id is not None:
            conditions.append(i.c.id == item_id)
        else:
            conditions.extend(_VISIBLE_UNREAD)
        async with self._engines.write() as connection:
            rows = (await connection.execute(select(i).where(*conditions))).mappings().all()
            if item_id is not None and not rows:
                raise NotFound(f"no inbox item {item_id!r} for user {user_id!r}")
            newly_read = [row for row in rows if row["read_at"] is None]
            values: dict[str, Any] = {"read_at": func.coalesce(i.c.read_at, now)}
            if archive:
                values["archived_at"] = func.coalesce(i.c.archived_at, now)
            await connection.execute(
                update(i).where(i.c.id.in_([row["id"] for row in rows])).values(**values)
            )
            if newly_read:
                await self._deliveries_read(connection, newly_read, actor, now)
            updated = await connection.execute(
                select(i).where(i.c.id.in_([row["id"] for row in rows]))
            )
            return [dict(row) for row in updated.mappings()]

    async def _deliveries_read(
        self, connection: AsyncConnection, items: Sequence[Any], actor: Actor, now: Any
    ) -> None:
        delivery_ids = [item["delivery_id"] for item in items]
        await connection.execute(
            update(t.deliveries)
            .where(
                t.deliveries.c.id.in_(delivery_ids),
                t.deliveries.c.status.in_(
                    [DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value]
                ),
            )
            .values(status=DeliveryStatus.READ.value, updated_at=now)
        )
        await connection.execute(
            t.audit_entries.insert(),
            [
                audit_to_row(
                    AuditEntry(
                        id=new_id(Prefix.AUDIT),
                        at=now,
                        type=AuditType.READ,
                        actor=actor,
                        notification_id=item["notification_id"],
                        delivery_id=item["delivery_id"],
                        channel=Channel.IN_APP,
                        user_id=item["user_id"],
                    )
                )
                for item in items
            ],
        )
