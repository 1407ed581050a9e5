"""Frequency caps and collapse keys: what was recently let through, per user.

Kept in the orchestrator's memory, where each decision is atomic (one event loop decides), and
seeded from the store the first time a user is seen, so that a restart forgets nothing: the
store stays the source of truth. Memory is bounded: the users seen least recently are
forgotten and seeded again if they come back, so a broadcast to millions stays flat. Several
orchestrator processes share these counts through Redis instead (the scale-out transport).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol


class ActivitySource(Protocol):
    async def recent_activity(
        self, user_ids: list[str], since: datetime
    ) -> tuple[list[tuple[str, str, str, datetime]], list[tuple[str, str, str, datetime]]]: ...


@dataclass(frozen=True, slots=True)
class Cap:
    count: int
    per_seconds: float


@dataclass(slots=True)
class _Activity:
    sends: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)
    first_by_key: dict[str, tuple[str, datetime]] = field(default_factory=dict)


class Ledger(Protocol):
    """Frequency caps and collapse windows: each call decides and records at once (atomic),
    so that two decisions can never both let the fourth one through."""

    async def prepare(self, user_ids: list[str], now: datetime) -> None: ...

    async def collapsed_into(
        self,
        user_id: str,
        collapse_key: str,
        window_seconds: float,
        notification_id: str,
        now: datetime,
    ) -> str | None: ...

    async def take(
        self, user_id: str, channel: str, category: str, now: datetime
    ) -> Cap | None: ...


class FrequencyLedger:
    def __init__(
        self,
        source: ActivitySource,
        caps: Mapping[str, Cap],
        *,
        horizon_seconds: float = 86400,
        max_users: int = 20_000,
    ) -> None:
        self._source = source
        self._caps = caps
        # How far back seeding looks: the longest cap window, and collapse windows up to it.
        self._horizon = timedelta(
            seconds=max([horizon_seconds, *(c.per_seconds for c in caps.values())])
        )
        self._max_users = max_users
        self._users: OrderedDict[str, _Activity] = OrderedDict()

    async def prepare(self, user_ids: list[str], now: datetime) -> None:
        """Have these users' recent activity at hand: one store query for those not held."""
        wanted = set(user_ids)
        for user_id in wanted & self._users.keys():
            self._users.move_to_end(user_id)
        unseen = sorted(wanted - self._users.keys())
        if unseen:
            sends, keyed = await self._source.recent_activity(unseen, now - self._horizon)
            activity = {user_id: _Activity() for user_id in unseen}
            for user_id, channel, category, at in sorted(sends, key=lambda s: s[3]):
                activity[user_id].sends.setdefault((channel, category), deque()).append(at)
            for user_id, collapse_key, notification_id, at in sorted(keyed, key=lambda k: k[3]):
                activity[user_id].first_by_key.setdefault(collapse_key, (notification_id, at))
            for user_id, seeded in activity.items():
                # Another batch may have seeded (and counted for) this user meanwhile.
                self._users.setdefault(user_id, seeded)
        while len(self._users) > max(self._max_users, len(wanted)):
            self._users.popitem(last=False)

    async def collapsed_into(
        self,
        user_id: str,
        collapse_key: str,
        window_seconds: float,
        notification_id: str,
        now: datetime,
    ) -> str | None:
        """The earlier notification this one collapses into, or None (it becomes the first)."""
        first_by_key = self._users.setdefault(user_id, _Activity()).first_by_key
        first = first_by_key.get(collapse_key)
        if (
            first is not None
            and first[0] != notification_id
            and now - first[1] < timedelta(seconds=window_seconds)
        ):
            return first[0]
        first_by_key[collapse_key] = (notification_id, now)
        return None

    async def take(self, user_id: str, channel: str, category: str, now: datetime) -> Cap | None:
        """Count one send against the category's cap; the cap when it is already reached."""
        cap = self._caps.get(category)
        if cap is None:
            return None
        activity = self._users.setdefault(user_id, _Activity())
        sent = activity.sends.setdefault((channel, category), deque())
        window_start = now - timedelta(seconds=cap.per_seconds)
        while sent and sent[0] <= window_start:
            sent.popleft()
        if len(sent) >= cap.count:
            return cap
        sent.append(now)
        return None
