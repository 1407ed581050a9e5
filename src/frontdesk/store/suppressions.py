"""The suppression list: addresses (email, phone number, device token) that must not be sent to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, tuple_

from frontdesk.core.models import SuppressionKind
from frontdesk.store import tables as t
from frontdesk.store.base import StoreBase


class SuppressionRecords(StoreBase):
    async def put_suppression(
        self,
        channel: str,
        address: str,
        reason: str,
        kind: SuppressionKind = SuppressionKind.SUPPRESSED,
    ) -> dict[str, Any]:
        """Add (or update) an entry. A suppression outranks an opt-out: a later STOP does not
        turn a bounced address back into one that START could reopen."""
        row = {
            "channel": channel,
            "address": address,
            "kind": kind.value,
            "reason": reason,
            "created_at": self._clock.now(),
        }
        keep_suppressed = (
            t.suppressions.c.kind == SuppressionKind.SUPPRESSED.value
            if kind is SuppressionKind.OPTED_OUT
            else None
        )
        async with self._engines.write() as connection:
            await connection.execute(
                self._insert(t.suppressions)
                .values(**row)
                .on_conflict_do_update(
                    index_elements=["channel", "address"],
                    set_={"reason": reason, "kind": kind.value},
                    where=~keep_suppressed if keep_suppressed is not None else None,
                )
            )
            stored = await connection.execute(
                select(t.suppressions).where(
                    t.suppressions.c.channel == channel, t.suppressions.c.address == address
                )
            )
            entry = dict(stored.mappings().one())
        await self._suppressions_changed([(channel, address)])
        return entry

    async def delete_suppression(
        self, channel: str, address: str, kind: SuppressionKind | None = None
    ) -> bool:
        """Remove an entry; with ``kind``, only an entry of that kind (START lifts an opt-out,
        never a suppression)."""
        s = t.suppressions
        condition = (s.c.channel == channel) & (s.c.address == address)
        if kind is not None:
            condition &= s.c.kind == kind.value
        async with self._engines.write() as connection:
            removed = await connection.execute(delete(s).where(condition))
        await self._suppressions_changed([(channel, address)])
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

    async def suppressed(
        self, addresses: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], SuppressionKind]:
        """Which of these (channel, address) pairs are on the list, and why: from the cache
        where it knows, from the table for the rest (and the cache is told what was read)."""
        wanted = sorted(set(addresses))
        if self._suppression_cache is None or not wanted:
            return await self._read_suppressions(wanted)
        known = await self._suppression_cache.lookup(wanted)
        found = {pair: kind for pair, kind in known.items() if kind is not None}
        unknown = [pair for pair in wanted if pair not in known]
        if unknown:
            read = await self._read_suppressions(unknown)
            found.update(read)
            await self._suppression_cache.remember({pair: read.get(pair) for pair in unknown})
        return found

    async def _read_suppressions(
        self, wanted: list[tuple[str, str]]
    ) -> dict[tuple[str, str], SuppressionKind]:
        found: dict[tuple[str, str], SuppressionKind] = {}
        s = t.suppressions
        async with self._engines.reader.connect() as connection:
            for chunk in self._chunks(wanted):
                rows = await connection.execute(
                    select(s.c.channel, s.c.address, s.c.kind).where(
                        tuple_(s.c.channel, s.c.address).in_(chunk)
                    )
                )
                found.update(
                    ((row.channel, row.address), SuppressionKind(row.kind)) for row in rows
                )
        return found
