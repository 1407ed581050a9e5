"""The token bucket: a burst up front, then the rate; urgent sends take the next token."""

from __future__ import annotations

import asyncio
import time

from frontdesk.core.urgency import urgent_if
from frontdesk.pipeline.throttle import TokenBucket


async def test_a_burst_goes_at_once_and_the_rest_at_the_rate() -> None:
    bucket = TokenBucket(rate_per_second=50, burst=5)
    started = time.monotonic()
    taken: list[float] = []

    async def send() -> None:
        await bucket.take()
        taken.append(time.monotonic() - started)

    await asyncio.gather(*(send() for _ in range(25)))

    taken.sort()
    assert taken[4] < 0.05  # the burst
    assert 0.35 <= taken[-1] < 0.6  # 20 more at 50/s
    in_any_fifth_of_a_second = [sum(1 for t in taken if s <= t < s + 0.2) for s in taken]
    assert max(in_any_fifth_of_a_second) <= 5 + 10 + 1  # burst + 0.2 s at 50/s, + scheduling


async def test_an_urgent_send_takes_the_next_token_ahead_of_the_bulk_waiting() -> None:
    bucket = TokenBucket(rate_per_second=20, burst=1)
    order: list[str] = []

    async def send(name: str, urgent: bool) -> None:
        with urgent_if(urgent):
            await bucket.take()
        order.append(name)

    await bucket.take()  # the bucket is empty now
    bulk = [asyncio.create_task(send(f"bulk{n}", False)) for n in range(3)]
    await asyncio.sleep(0)
    receipt = asyncio.create_task(send("receipt", True))
    await asyncio.gather(*bulk, receipt)

    assert order[0] == "receipt"
