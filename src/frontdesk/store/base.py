"""What every part of the SQL store shares: engines, the group committer, the clock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from frontdesk.core.ports import Clock
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

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that understands ON CONFLICT on both dialects."""
        if self._engines.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    @staticmethod
    def _chunks(rows: list[Any]) -> list[list[Any]]:
        return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
