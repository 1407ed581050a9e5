"""An API key's allowance (GCRA): over any stretch of time it admits no more than its burst
plus its rate; a refused request takes nothing; waiting the answer lets the request in."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.allowance import Allowance, LocalAllowances

RATES = st.floats(1, 10_000)
BURSTS = st.integers(1000, 5000)
# (seconds since the request before, notifications asked for)
REQUESTS = st.lists(st.tuples(st.floats(0, 2), st.integers(1, 1000)), max_size=60)


class Time:
    now = 0.0


def _answers(
    allowance: Allowance, requests: list[tuple[float, int]], time: Time
) -> list[tuple[float, int, float]]:
    """(time, count, wait) for each request, in order, from one key's allowance."""
    allowances = LocalAllowances(allowance, clock=lambda: time.now)

    async def ask() -> list[tuple[float, int, float]]:
        answers = []
        for gap, count in requests:
            time.now += gap
            answers.append((time.now, count, await allowances.admit("key", count)))
        return answers

    return asyncio.run(ask())


@given(RATES, BURSTS, REQUESTS)
def test_no_stretch_of_time_admits_more_than_the_burst_and_the_rate(
    rate: float, burst: int, requests: list[tuple[float, int]]
) -> None:
    answers = _answers(Allowance(rate, burst), requests, Time())

    admitted = [(at, count) for at, count, wait in answers if wait == 0]
    for first, (start, _) in enumerate(admitted):
        total = 0
        for at, count in admitted[first:]:
            total += count
            assert total <= burst + rate * (at - start) + 1e-6 * burst


@given(RATES, BURSTS, REQUESTS, st.integers(1, 1000))
def test_a_refused_request_is_admitted_once_its_wait_is_over(
    rate: float, burst: int, requests: list[tuple[float, int]], count: int
) -> None:
    time = Time()
    allowances = LocalAllowances(Allowance(rate, burst), clock=lambda: time.now)

    async def ask() -> None:
        for gap, earlier in requests:
            time.now += gap
            await allowances.admit("key", earlier)
        wait = await allowances.admit("key", count)
        if wait > 0:
            time.now += wait + 1e-9
            assert await allowances.admit("key", count) == 0

    asyncio.run(ask())


@given(RATES, BURSTS, REQUESTS, st.integers(1, 1000))
def test_a_refused_request_takes_nothing_from_the_allowance(
    rate: float, burst: int, requests: list[tuple[float, int]], probe: int
) -> None:
    time = Time()
    asked = LocalAllowances(Allowance(rate, burst), clock=lambda: time.now)
    twin = LocalAllowances(Allowance(rate, burst), clock=lambda: time.now)  # sees no refusal

    async def ask() -> None:
        for gap, count in requests:
            time.now += gap
            if await asked.admit("key", count) == 0:
                assert await twin.admit("key", count) == 0
        assert await asked.admit("key", probe) == await twin.admit("key", probe)

    asyncio.run(ask())


def test_a_full_batch_from_a_new_key_is_admitted_at_once() -> None:
    answers = _answers(Allowance(rate_per_second=1, burst=1000), [(0.0, 1000)], Time())

    assert answers == [(0.0, 1000, 0.0)]


def test_keys_do_not_share_an_allowance() -> None:
    time = Time()
    allowances = LocalAllowances(Allowance(rate_per_second=1, burst=1000), clock=lambda: time.now)

    async def ask() -> tuple[float, float, float]:
        return (
            await allowances.admit("spent", 1000),
            await allowances.admit("spent", 1),
            await allowances.admit("fresh", 1000),
        )

    assert asyncio.run(ask()) == (0.0, 1.0, 0.0)
