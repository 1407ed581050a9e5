"""Group commit: many small writes from concurrent tasks share one transaction.

At thousands of deliveries a second, a transaction (and on SQLite an fsync) per inbox item or
per outcome would be the bottleneck. Writers submit rows and await their own result; whatever
arrives while one transaction is being written goes into the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Handler = Callable[[AsyncConnection, Sequence[Any]], Awaitable[Sequence[Any]]]


class GroupCommitter:
    def __init__(self, engine: AsyncEngine, handlers: dict[str, Handler]) -> None:
        self._engine = engine
        self._handlers = handlers
        self._pending: list[tuple[str, Any, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, kind: str, row: Any) -> Any:
        (result,) = await self.submit_many(kind, [row])
        return result

    async def submit_many(self, kind: str, rows: Sequence[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in rows]
        self._pending.extend((kind, row, future) for row, future in zip(rows, futures, strict=True))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_while_pending())
        return list(await asyncio.gather(*futures))

    async def _flush_while_pending(self) -> None:
        while self._pending:
            # One turn of the loop lets writers woken by the same event add their rows.
            await asyncio.sleep(0)
            batch, self._pending = self._pending, []
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[str, Any, asyncio.Future[Any]]]) -> None:
        by_kind: dict[str, list[tuple[Any, asyncio.Future[Any]]]] = {}
        for kind, row, future in batch:
            by_kind.setdefault(kind, []).append((row, future))
        answered: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            async with self._engine.begin() as connection:
                for kind, entries in by_kind.items():
                    answers = await self._handlers[kind](connection, [row for row, _ in entries])
                    answered.extend(zip((f for _, f in entries), answers, strict=True))
        except BaseException as error:
            # Every waiter learns of the failure (or of our cancellation); none is left hanging.
            failure = error if isinstance(error, Exception) else RuntimeError("write cancelled")
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        for future, answer in answered:
            if not future.done():
                future.set_result(answer)
