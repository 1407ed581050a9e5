"""Faults an operator can switch on for the sandbox provider, to rehearse provider failures
(errors, throttling, a provider that hangs) end to end without a real provider."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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


class SandboxFaults:
    """The faults in force, per channel; ``remaining`` counts down to the fault's end."""

    def __init__(self) -> None:
        self._faults: dict[Channel, Fault] = {}

    def set(self, channel: Channel, fault: Fault) -> None:
        self._faults[channel] = fault

    def clear(self, channel: Channel) -> None:
        self._faults.pop(channel, None)

    def current(self) -> dict[Channel, Fault]:
        return dict(self._faults)

    def take(self, channel: Channel) -> Fault | None:
        """The fault this send meets, if any, counting it against ``remaining``."""
        fault = self._faults.get(channel)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[channel]
        return fault
