"""Group commit: concurrent writers share transactions, and each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.core.urgency import urgent_if
from frontdesk.store.engine import Engines, create_engines
from frontdesk.store.group_commit import GroupCommitter

POISON = "poison"


class OutcomeWriter:
    """A handler that inserts labels and answers each with its row id; it refuses POISON."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, connection: AsyncConnection, labels: Sequence[str]) -> list[int]:
        self.batches.append(list(labels))
        ids = []
        for label in labels:
            result = await connection.execute(
                text("INSERT INTO outcomes (label) VALUES (:label) RETURNING id"), {"label": label}
            )
            ids.append(result.scalar_one())
        if POISON in labels:
            raise RuntimeError("the outcome cannot be stored")
        return ids


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[Engines]:
    engines = create_engines("sqlite:///" + str(tmp_path / "group_commit.db"))
    async with engines.write() as connection:
        await connection.execute(
            text(
                "CREATE TABLE outcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL)"
            )
        )
    yield engines
    await engines.dispose()


async def stored_labels(engines: Engines) -> dict[int, str]:
    async with engines.reader.connect() as connection:
        rows = await connection.execute(text("SELECT id, label FROM outcomes"))
        return {row.id: row.label for row in rows}


async def test_a_hundred_concurrent_submits_share_a_few_transactions(engines: Engines) -> None:
    writer = OutcomeWriter()
    committer = GroupCommitter(engines, {"outcome": writer})

    await asyncio.gather(*(committer.submit("outcome", f"row-{i}") for i in range(100)))

    assert len(writer.batches) <= 5
    assert sorted(label for batch in writer.batches for label in batch) == sorted(
        f"row-{i}" for i in range(100)
    )
    assert len(await stored_labels(engines)) == 100


async def test_each_concurrent_caller_gets_the_result_for_its_own_row(engines: Engines) -> None:
    committer = GroupCommitter(engines, {"outcome": OutcomeWriter()})
    labels = [f"row-{i}" for i in range(100)]

    ids = await asyncio.gather(*(committer.submit("outcome", label) for label in labels))

    stored = await stored_labels(engines)
    assert [stored[row_id] for row_id in ids] == labels


async def test_submit_many_answers_in_the_order_of_its_rows(engines: Engines) -> None:
    committer = GroupCommitter(engines, {"outcome": OutcomeWriter()})

    ids = await committer.submit_many("outcome", ["first", "second", "third"])

    stored = await stored_labels(engines)
    assert [stored[row_id] for row_id in ids] == ["first", "second", "third"]


async def test_a_failing_handler_fails_every_waiter_of_its_flush(engines: Engines) -> None:
    writer = OutcomeWriter()
    committer = GroupCommitter(engines, {"outcome": writer})

    results = await asyncio.gather(
        committer.submit("outcome", "before"),
        committer.submit("outcome", POISON),
        committer.submit("outcome", "after"),
        return_exceptions=True,
    )

    assert len(writer.batches) == 1
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await stored_labels(engines) == {}


async def test_a_submit_after_a_failed_flush_is_committed(engines: Engines) -> None:
    committer = GroupCommitter(engines, {"outcome": OutcomeWriter()})
    with pytest.raises(RuntimeError):
        await committer.submit("outcome", POISON)

    row_id = await committer.submit("outcome", "recovered")

    assert await stored_labels(engines) == {row_id: "recovered"}


async def test_urgent_rows_are_committed_ahead_of_the_bulk_waiting_with_them(
    engines: Engines,
) -> None:
    writer = OutcomeWriter()
    committer = GroupCommitter(engines, {"outcome": writer})

    async def urgent(label: str) -> int:
        with urgent_if(True):
            return int(await committer.submit("outcome", label))

    await asyncio.gather(
        *(committer.submit("outcome", f"bulk-{i}") for i in range(3)), urgent("receipt")
    )

    assert writer.batches[0] == ["receipt"]
    assert sorted(writer.batches[1]) == ["bulk-0", "bulk-1", "bulk-2"]
