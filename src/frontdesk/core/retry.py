"""What a failed send means and when to try again: retryable vs permanent errors, backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass


class RetryableError(Exception):
    """The send may succeed later (5xx, timeout, throttling); ``retry_after`` is the provider's."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.provider: str | None = None  # which provider answered, when several were tried


class Throttled(RetryableError):
    """The provider is up and asks us to slow down (429, an exhausted quota): retried no sooner
    than its Retry-After. Says nothing against the provider's health (its circuit stays as is)."""


class ProviderUnavailable(RetryableError):
    """The provider did not take the message: it refused the connection or answered 5xx.
    Another provider may be tried at once, with no risk of the message going out twice."""


class PermanentError(Exception):
    """The send can never succeed as it stands (invalid address, unregistered token).

    ``code`` is the provider's own error code. ``suppress`` means the recipient itself is dead
    (a hard-bounced address, a number that replied STOP, an unregistered device token): the
    address goes on the suppression list, a device token is forgotten.
    """

    def __init__(self, message: str, *, code: str = "permanent", suppress: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.suppress = suppress
        self.provider: str | None = None  # which provider answered, when several were tried


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped, never shorter than a provider's Retry-After.

    Full jitter (a uniform draw in [0, exponential]) spreads a burst of failures so that the
    retries do not arrive at the provider together; ``floor`` keeps a minimum gap.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 3600.0
    floor_seconds: float = 0.05
    max_retry_after_seconds: float = 3600.0

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based)."""
        draw = (rng or random).random()
        # Past a thousand doublings any base exceeds any cap; a larger power of two would
        # overflow a float (OverflowError) instead of being capped.
        doublings = min(max(0, attempt - 1), 1000)
        exponential = min(self.cap_seconds, self.base_seconds * 2.0**doublings)
        delay = max(self.floor_seconds, exponential * draw)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after_seconds))
        return delay
