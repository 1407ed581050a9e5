"""What every part of the SQL store shares: engines, the group committer, the clock, and the
suppression cache that every write to the suppression list must tell."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from frontdesk.core.ports import Clock, SuppressionCache
from frontdesk.store.driver import DriverStatements
from frontdesk.store.engine import Engines
from frontdesk.store.group_commit import GroupCommitter

# SQLite allows 32,766 bound parameters; batches of rows stay well below that.
CHUNK = 500


class StoreBase:
    _engines: Engines
    _committer: GroupCommitter
    _clock: Clock
    _driver: DriverStatements
    _suppression_cache: SuppressionCache | None

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that understands ON CONFLICT on both dialects."""
        if self._engines.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @staticmethod
    def _chunks(rows: list[Any]) -> list[list[Any]]:
        return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]

    async def _suppressions_changed(self, addresses: Collection[tuple[str, str]]) -> None:
        """Tell the cache, once the change is committed: what it knew of these pairs is
        dropped, and an answer read before the change is not kept."""
        if self._suppression_cache is not None and addresses:
            await self._suppression_cache.forget(addresses)
