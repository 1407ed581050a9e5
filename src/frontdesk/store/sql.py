"""The SQL store: one class over SQLite or PostgreSQL, assembled from one part per concern."""

from __future__ import annotations

from sqlalchemy import text

from frontdesk.core.ports import Clock, SuppressionCache
from frontdesk.store.accounts import AccountRecords
from frontdesk.store.catalog import TemplateRecords
from frontdesk.store.deliveries import DeliveryRecords
from frontdesk.store.driver import DriverStatements
from frontdesk.store.engine import Engines, create_engines
from frontdesk.store.group_commit import GroupCommitter
from frontdesk.store.inbox import InboxRecords
from frontdesk.store.notifications import NotificationRecords
from frontdesk.store.suppressions import SuppressionRecords
from frontdesk.store.topics import TopicRecords
from frontdesk.store.webhooks import WebhookRecords


class SqlStore(
    AccountRecords,
    TemplateRecords,
    TopicRecords,  # before NotificationRecords: a broadcast's fan-out is built on admission
    NotificationRecords,
    DeliveryRecords,
    InboxRecords,
    SuppressionRecords,
    WebhookRecords,
):
    def __init__(
        self, engines: Engines, clock: Clock, suppression_cache: SuppressionCache | None = None
    ) -> None:
        self._engines = engines
        self._clock = clock
        self._suppression_cache = suppression_cache
        self._driver = DriverStatements(engines.dialect)
        self._committer = GroupCommitter(
            engines,
            {
                "admit": self._admit_batch,
                "outcome": self._save_outcome_batch,
                "inbox": self._add_inbox_batch,
                "sandbox": self._record_sandbox_batch,
            },
        )

    @classmethod
    def connect(
        cls,
        url: str,
        clock: Clock,
        *,
        sqlite_synchronous: str = "FULL",
        suppression_cache: SuppressionCache | None = None,
    ) -> SqlStore:
        return cls(
            create_engines(url, sqlite_synchronous=sqlite_synchronous), clock, suppression_cache
        )

    @property
    def dialect(self) -> str:
        return self._engines.dialect

    async def ping(self) -> None:
        async with self._engines.reader.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self._engines.dispose()
