"""The embedded transport: the event log and channel queues live in the store itself.

Work is claimed by lease, so a process killed at any instant leaves nothing lost: what it held
becomes claimable again when the lease runs out. Wake-ups are in-process events; a short poll
covers work written by other processes and delayed work coming due.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Sequence

from frontdesk.core.models import Channel, Delivery, Notification
from frontdesk.core.ports import DeliveryOutcome, QueueStore


class EmbeddedTransport:
    def __init__(self, store: QueueStore) -> None:
        self._store = store
        # One wake-up per waiting loop (the urgent and bulk loops of the orchestrator and of
        # each channel's worker), so that one loop's wake-up is never taken by the other.
        self._events: defaultdict[frozenset[int], asyncio.Event] = defaultdict(asyncio.Event)
        self._channels: defaultdict[tuple[Channel, frozenset[int]], asyncio.Event] = defaultdict(
            asyncio.Event
        )

    async def claim_events(
        self, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Notification]:
        return await self._store.claim_notifications(limit, lease_seconds, lanes)

    async def claim_deliveries(
        self, channel: Channel, limit: int, lease_seconds: float, lanes: Collection[int]
    ) -> list[Delivery]:
        return await self._store.claim_deliveries(channel, limit, lease_seconds, lanes)

    def events_appended(self) -> None:
        for waiting in self._events.values():
            waiting.set()

    def deliveries_ready(self, channels: Sequence[Channel]) -> None:
        for (channel, _), waiting in self._channels.items():
            if channel in channels:
                waiting.set()

    async def wait_for_events(self, max_wait_seconds: float, lanes: Collection[int]) -> None:
        await _wait(self._events[frozenset(lanes)], max_wait_seconds)

    async def wait_for_deliveries(
        self, channel: Channel, max_wait_seconds: float, lanes: Collection[int]
    ) -> None:
        await _wait(self._channels[channel, frozenset(lanes)], max_wait_seconds)

    def is_connected(self) -> bool:
        return True

    def release(self, work_ids: Iterable[str]) -> None:
        """Nothing to do: the store's rows are the queue."""

    async def deliveries_done(self, channel: Channel, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Nothing to do: the outcomes are the queue's state."""


async def _wait(event: asyncio.Event, max_wait_seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max_wait_seconds)
    event.clear()


class LocalInboxFeed:
    """In-process fan-out of "this user's inbox changed" to open SSE streams."""

    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def publish(self, user_id: str) -> None:
        for listener in self._listeners.get(user_id, ()):
            listener.set()

    async def subscribe(self, user_id: str) -> AsyncIterator[None]:
        listener = asyncio.Event()
        self._listeners[user_id].add(listener)
        try:
            while True:
                await listener.wait()
                listener.clear()
                yield None
        finally:
            self._listeners[user_id].discard(listener)
            if not self._listeners[user_id]:
                del self._listeners[user_id]
