"""Backoff schedules and the two kinds of failed send: retryable and permanent."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.retry import Backoff, PermanentError, RetryableError

attempts = st.integers(min_value=1, max_value=50)
bases = st.floats(min_value=0.01, max_value=60)
# A cap of at least one second keeps the default floor (0.05 s) below it.
caps = st.floats(min_value=1, max_value=86_400)
retry_afters = st.none() | st.floats(min_value=0, max_value=20_000)
seeds = st.integers(min_value=0, max_value=2**32)


class FixedDraw(random.Random):
    """A random source whose every draw is the same number: the jitter made predictable."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


@given(attempts, bases, caps, retry_afters, seeds)
def test_delay_is_never_below_the_floor(
    attempt: int, base: float, cap: float, retry_after: float | None, seed: int
) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap)

    delay = backoff.delay(attempt, retry_after=retry_after, rng=random.Random(seed))

    assert delay >= backoff.floor_seconds


@given(attempts, bases, caps, retry_afters, seeds)
def test_delay_is_never_above_the_cap_or_the_honoured_retry_after(
    attempt: int, base: float, cap: float, retry_after: float | None, seed: int
) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap, max_retry_after_seconds=3600)
    honoured = 0.0 if retry_after is None else min(retry_after, backoff.max_retry_after_seconds)

    delay = backoff.delay(attempt, retry_after=retry_after, rng=random.Random(seed))

    assert delay <= max(cap, honoured)


@given(attempts, bases, caps, st.floats(min_value=0, max_value=3600), seeds)
def test_delay_is_never_shorter_than_a_providers_retry_after(
    attempt: int, base: float, cap: float, retry_after: float, seed: int
) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap, max_retry_after_seconds=3600)

    delay = backoff.delay(attempt, retry_after=retry_after, rng=random.Random(seed))

    assert delay >= retry_after


def test_a_retry_after_beyond_the_maximum_is_cut_to_the_maximum() -> None:
    backoff = Backoff(base_seconds=1, cap_seconds=10, max_retry_after_seconds=600)

    delay = backoff.delay(1, retry_after=86_400, rng=FixedDraw(0.5))

    assert delay == 600


def test_the_envelope_doubles_with_each_attempt_until_the_cap() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60, floor_seconds=0)

    envelope = [backoff.delay(attempt, rng=FixedDraw(1.0)) for attempt in range(1, 8)]

    assert envelope == [2, 4, 8, 16, 32, 60, 60]


@given(attempts, bases, caps, seeds)
def test_for_the_same_draw_a_later_attempt_never_waits_less(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    backoff = Backoff(base_seconds=base, cap_seconds=cap)

    earlier = backoff.delay(attempt, rng=random.Random(seed))
    later = backoff.delay(attempt + 1, rng=random.Random(seed))

    assert later >= earlier


def test_full_jitter_spreads_one_attempt_across_its_whole_envelope() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=3600)
    envelope = 2 * 2**5

    delays = [backoff.delay(6, rng=random.Random(seed)) for seed in range(200)]

    assert len(set(delays)) >= 190
    assert min(delays) < envelope / 4
    assert max(delays) > envelope * 3 / 4


def test_the_draw_is_taken_from_the_given_random_source() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=3600)

    first = backoff.delay(4, rng=random.Random(7))
    again = backoff.delay(4, rng=random.Random(7))

    assert first == again


@given(st.integers(min_value=1, max_value=100_000), bases, caps, seeds)
def test_a_very_late_attempt_waits_at_most_the_cap_instead_of_overflowing(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    # Settings give float bases; a float times 2**1024 or more cannot be represented.
    backoff = Backoff(base_seconds=base, cap_seconds=cap)

    delay = backoff.delay(attempt, rng=random.Random(seed))

    assert backoff.floor_seconds <= delay <= cap


def test_the_thousand_and_twenty_fifth_attempt_waits_within_the_cap() -> None:
    backoff = Backoff(base_seconds=2.0, cap_seconds=3600.0)

    assert backoff.delay(1025, rng=FixedDraw(0.5)) == 1800.0


def test_a_retryable_error_carries_the_providers_retry_after() -> None:
    error = RetryableError("429 Too Many Requests", retry_after=30.0)

    assert error.retry_after == 30.0
    assert str(error) == "429 Too Many Requests"


def test_a_retryable_error_without_retry_after_leaves_it_to_the_backoff() -> None:
    assert RetryableError("timeout").retry_after is None


def test_a_permanent_error_carries_its_code_and_whether_to_suppress_the_address() -> None:
    error = PermanentError("mailbox does not exist", code="invalid_address", suppress=True)

    assert error.code == "invalid_address"
    assert error.suppress is True
    assert str(error) == "mailbox does not exist"


def test_a_permanent_error_defaults_to_a_generic_code_and_no_suppression() -> None:
    error = PermanentError("rejected")

    assert error.code == "permanent"
    assert error.suppress is False
