"""The write gate: one writer at a time, urgent writers ahead of the bulk already waiting."""

from __future__ import annotations

import asyncio

import pytest

from frontdesk.store.write_gate import WriteGate


async def _write(gate: WriteGate, name: str, order: list[str], *, urgent: bool) -> None:
    async with gate.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def test_an_urgent_writer_goes_ahead_of_bulk_writers_already_waiting() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.turn(urgent=False):
            order.append("holder")
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    bulk = [asyncio.create_task(_write(gate, f"bulk{n}", order, urgent=False)) for n in range(3)]
    await asyncio.sleep(0)
    urgent = asyncio.create_task(_write(gate, "urgent", order, urgent=True))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, *bulk, urgent)

    assert order == ["holder", "urgent", "bulk0", "bulk1", "bulk2"]


async def test_a_writer_cancelled_while_waiting_does_not_block_the_next() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.turn(urgent=False):
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(_write(gate, "cancelled", order, urgent=True))
    following = asyncio.create_task(_write(gate, "following", order, urgent=False))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(held, following)

    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert order == ["following"]


async def test_a_writer_cancelled_as_its_turn_came_hands_the_turn_on() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = asyncio.Event()
    waiting: list[asyncio.Task[None]] = []

    async def holder() -> None:
        async with gate.turn(urgent=False):
            await release.wait()
        waiting[0].cancel()  # its turn was just handed to it, and it has not run yet

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(_write(gate, "unlucky", order, urgent=False)))
    following = asyncio.create_task(_write(gate, "following", order, urgent=False))
    await asyncio.sleep(0)
    release.set()
    await held
    await asyncio.wait_for(following, timeout=1)

    assert waiting[0].cancelled()
    assert order == ["following"]
