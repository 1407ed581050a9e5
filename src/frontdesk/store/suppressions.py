"""The suppression list: addresses (email, phone number, device token) that must not be sent to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_

from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase


class SuppressionRecords(StoreBase):
    async def put_suppression(self, channel: str, address: str, reason: str) -> dict[str, Any]:
        row = {
            "channel": channel,
            "address": address,
            "reason": reason,
            "created_at": self._clock.now(),
        }
        async with self._engines.write() as connection:
            await connection.execute(
                self._insert(t.suppressions)
                .values(**row)
                .on_conflict_do_update(
                    index_elements=["channel", "address"], set_={"reason": reason}
                )
            )
            stored = await connection.execute(
                select(t.suppressions).where(
                    t.suppressions.c.channel == channel, t.suppressions.c.address == address
                )
            )
            return dict(stored.mappings().one())

    async def delete_suppression(self, channel: str, address: str) -> bool:
        async with self._engines.write() as connection:
            removed = await connection.execute(
                delete(t.suppressions).where(
                    t.suppressions.c.channel == channel, t.suppressions.c.address == address
                )
            )
        return bool(removed.rowcount)

    async def list_suppressions(
        self, channel: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        s = t.suppressions
        query = select(s).order_by(s.c.channel, s.c.address).limit(limit)
        if channel:
            query = query.where(s.c.channel == channel)
        if after:
            query = query.where(tuple_(s.c.channel, s.c.address) > tuple_(*after))
        async with self._engines.reader.connect() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def suppressed(self, addresses: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (channel, address) pairs are on the list."""
        wanted = sorted(set(addresses))
        found: set[tuple[str, str]] = set()
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(wanted):
                rows = await connection.execute(
                    select(t.suppressions.c.channel, t.suppressions.c.address).where(
                        tuple_(t.suppressions.c.channel, t.suppressions.c.address).in_(chunk)
                    )
                )
                found.update((row.channel, row.address) for row in rows)
        return found
