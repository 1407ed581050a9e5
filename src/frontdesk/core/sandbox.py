"""Faults an operator can switch on for the sandbox provider, to rehearse provider failures
(errors, throttling, a provider that hangs) end to end without a real provider."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from frontdesk.core.models import Channel


class FaultMode(StrEnum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    HANG = "hang"


@dataclass(slots=True)
class Fault:
    mode: FaultMode
    remaining: int | None = None
    retry_after_seconds: float | None = None


class SandboxFaults(Protocol):
    """The faults in force, per channel; ``remaining`` counts down to the fault's end. Shared
    by every process of an installation where several send (see transport/redis_state.py)."""

    async def set(self, channel: Channel, fault: Fault) -> None: ...

    async def clear(self, channel: Channel) -> None: ...

    async def current(self) -> dict[Channel, Fault]: ...

    async def take(self, channel: Channel, sends: int) -> list[Fault | None]:
        """The fault each of the next ``sends`` sends meets, if any, counting them against
        ``remaining``."""
        ...


class LocalSandboxFaults:
    """The faults of one process."""

    def __init__(self) -> None:
        self._faults: dict[Channel, Fault] = {}

    async def set(self, channel: Channel, fault: Fault) -> None:
        self._faults[channel] = fault

    async def clear(self, channel: Channel) -> None:
        self._faults.pop(channel, None)

    async def current(self) -> dict[Channel, Fault]:
        return dict(self._faults)

    async def take(self, channel: Channel, sends: int) -> list[Fault | None]:
        return [self._take_one(channel) for _ in range(sends)]

    def _take_one(self, channel: Channel) -> Fault | None:
        fault = self._faults.get(channel)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[channel]
        return fault
