"""The circuit breaker: opens on a run of failures or a failure rate, half-opens to probe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.breaker import CircuitBreaker, CircuitState

NOON = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_a_run_of_failures_opens_the_circuit() -> None:
    breaker = CircuitBreaker(failure_run=3)

    changes = [breaker.failed(NOON) for _ in range(3)]

    assert changes == [None, None, CircuitState.OPEN]
    assert not breaker.allows(NOON + timedelta(seconds=1))


def test_a_success_in_between_resets_the_run() -> None:
    breaker = CircuitBreaker(failure_run=3, rate_window=100)

    for _ in range(10):
        breaker.failed(NOON)
        breaker.failed(NOON)
        breaker.succeeded()

    assert breaker.state is CircuitState.CLOSED


def test_a_failure_rate_over_the_window_opens_the_circuit() -> None:
    breaker = CircuitBreaker(failure_run=100, failure_rate=0.5, rate_window=10)

    for _ in range(5):
        breaker.succeeded()
        breaker.failed(NOON)

    assert breaker.state is CircuitState.OPEN


def test_after_the_open_period_one_probe_goes_through_and_its_success_closes_the_circuit() -> None:
    breaker = CircuitBreaker(failure_run=1, open_seconds=30)
    breaker.failed(NOON)
    later = NOON + timedelta(seconds=30)

    first, second = breaker.allows(later), breaker.allows(later)
    closed = breaker.succeeded()

    assert (first, second) == (True, False)
    assert closed is CircuitState.CLOSED
    assert breaker.allows(later)


def test_a_failed_probe_reopens_the_circuit_for_another_period() -> None:
    breaker = CircuitBreaker(failure_run=1, open_seconds=30)
    breaker.failed(NOON)
    probe_time = NOON + timedelta(seconds=31)
    assert breaker.allows(probe_time)

    reopened = breaker.failed(probe_time)

    assert reopened is CircuitState.OPEN
    assert not breaker.allows(probe_time + timedelta(seconds=29))
    assert breaker.allows(probe_time + timedelta(seconds=30))


@given(st.lists(st.booleans(), max_size=200))
def test_while_closed_it_never_refuses_and_it_only_opens_on_a_failure(outcomes: list[bool]) -> None:
    breaker = CircuitBreaker(failure_run=5, failure_rate=0.5, rate_window=20)
    for ok in outcomes:
        if breaker.state is not CircuitState.CLOSED:
            break
        assert breaker.allows(NOON)
        change = breaker.succeeded() if ok else breaker.failed(NOON)
        assert change is None or (not ok and change is CircuitState.OPEN)
