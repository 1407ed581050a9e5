"""A clock the tests move by hand: quiet hours, send_at and expiry without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Midnight in Paris: inside quiet hours 22:00-07:00, which end at 06:00 UTC.
MIDNIGHT_IN_PARIS = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)
