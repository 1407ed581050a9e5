"""A circuit breaker per provider: stop sending to a provider that is down, probe it later.

Closed, it lets every send through and counts failures. It opens on a run of consecutive
failures or on a failure rate over the recent sends; open, it lets nothing through (the
channel's next provider takes the traffic). After ``open_seconds`` it half-opens: one probe
goes through, and its outcome closes the circuit again or reopens it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    failure_run: int = 5
    failure_rate: float = 0.5
    rate_window: int = 20
    open_seconds: float = 30.0
    state: CircuitState = CircuitState.CLOSED
    _opened_at: datetime | None = None
    _run: int = 0
    _probing: bool = False
    _recent: deque[bool] = field(default_factory=deque)

    def allows(self, now: datetime) -> bool:
        """May a send go through now? In half-open, only one probe at a time."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            assert self._opened_at is not None
            if now - self._opened_at < timedelta(seconds=self.open_seconds):
                return False
            self.state = CircuitState.HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def is_open(self, now: datetime) -> bool:
        """Whether it still refuses everything (a look that changes nothing, unlike allows)."""
        return (
            self.state is CircuitState.OPEN
            and self._opened_at is not None
            and now - self._opened_at < timedelta(seconds=self.open_seconds)
        )

    def succeeded(self) -> CircuitState | None:
        """Record a send the provider took (or refused for the message's own fault); the new
        state when this changed it."""
        self._remember(True)
        self._run = 0
        if self.state is CircuitState.HALF_OPEN:
            self._close()
            return self.state
        return None

    def failed(self, now: datetime) -> CircuitState | None:
        """Record a send the provider failed; the new state when this changed it."""
        self._remember(False)
        self._run += 1
        if self.state is CircuitState.HALF_OPEN or (
            self.state is CircuitState.CLOSED and self._tripped()
        ):
            self.state, self._opened_at, self._probing = CircuitState.OPEN, now, False
            return self.state
        return None

    def _tripped(self) -> bool:
        if self._run >= self.failure_run:
            return True
        if len(self._recent) < self.rate_window:
            return False
        return self._recent.count(False) / len(self._recent) >= self.failure_rate

    def _remember(self, ok: bool) -> None:
        self._recent.append(ok)
        if len(self._recent) > self.rate_window:
            self._recent.popleft()

    def _close(self) -> None:
        self.state, self._opened_at, self._probing, self._run = CircuitState.CLOSED, None, False, 0
        self._recent.clear()
