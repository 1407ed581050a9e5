"""Fan-out: a notification to a topic becomes one notification per subscriber, in chunks.

Only one chunk of subscribers is in memory at a time, and each chunk's notifications are
committed with the broadcast's cursor: a crash resumes at the next subscriber, and a replayed
chunk is answered by the per-subscriber idempotency keys. Broadcast notifications go out in
their category's lane, so transactional work is never queued behind them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from frontdesk.core.models import NotificationRequest
from frontdesk.core.ports import Clock, PipelineStore, Transport
from frontdesk.logs import get_logger
from frontdesk.pipeline.ingest import admission
from frontdesk.pipeline.templates import TemplateCatalog

log = get_logger(__name__)


class FanOut:
    def __init__(
        self,
        store: PipelineStore,
        transport: Transport,
        templates: TemplateCatalog,
        clock: Clock,
        *,
        dedupe_hours: float,
        chunk_size: int = 1000,
        lease_seconds: float = 30.0,
        poll_seconds: float = 0.5,
        pause_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._transport = transport
        self._templates = templates
        self._clock = clock
        self._dedupe_window = timedelta(hours=dedupe_hours)
        self._chunk_size = chunk_size
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._pause_seconds = pause_seconds

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                broadcast = await self._store.claim_broadcast(self._lease_seconds)
                if broadcast is not None:
                    await self.fan_out(broadcast, stopping)
                    continue
            except Exception:
                log.exception("fan-out failed; the broadcast will be claimed again")
            await asyncio.sleep(self._poll_seconds)

    async def fan_out(self, broadcast: dict[str, Any], stopping: asyncio.Event) -> None:
        request = NotificationRequest.from_json(broadcast["request"])
        template, _ = await self._templates.compiled(
            request.template, broadcast["template_version"]
        )
        cursor = broadcast["cursor"]
        while not stopping.is_set():
            subscribers = await self._store.subscribers_after(
                str(broadcast["topic"]),
                cursor if isinstance(cursor, str) else None,
                self._chunk_size,
            )
            done = len(subscribers) < self._chunk_size
            now = self._clock.now()
            admissions = [
                admission(
                    replace(request, user_id=user_id),
                    template,
                    now,
                    self._dedupe_window,
                    broadcast_id=broadcast["id"],
                )
                for user_id in subscribers
            ]
            cursor = subscribers[-1] if subscribers else cursor
            await self._store.save_fanout_chunk(
                str(broadcast["id"]),
                admissions,
                cursor if isinstance(cursor, str) else None,
                done,
                self._lease_seconds,
            )
            if admissions:
                self._transport.events_appended()
            if done:
                return
            # A pause between chunks lets ingest and the orchestrator in: a broadcast need not
            # run far ahead of the orchestrator, which takes its notifications lane by lane.
            await asyncio.sleep(self._pause_seconds)
