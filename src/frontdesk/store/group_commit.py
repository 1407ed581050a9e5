"""Group commit: many small writes from concurrent tasks share one transaction.

At thousands of deliveries a second, a transaction (and on SQLite an fsync) per inbox item or
per outcome would be the bottleneck. Writers submit rows and await their own result; whatever
arrives while one transaction is being written goes into the next. Urgent rows (see
core.urgency) go in a transaction of their own, ahead of the bulk waiting with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.core.urgency import is_urgent, urgent_if
from frontdesk.store.engine import Engines

Handler = Callable[[AsyncConnection, Sequence[Any]], Awaitable[Sequence[Any]]]


class _Pending(NamedTuple):
    kind: str
    row: Any
    answer: asyncio.Future[Any]
    urgent: bool


class GroupCommitter:
    def __init__(self, engines: Engines, handlers: dict[str, Handler]) -> None:
        self._engines = engines
        self._handlers = handlers
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, kind: str, row: Any) -> Any:
        (result,) = await self.submit_many(kind, [row])
        return result

    async def submit_many(self, kind: str, rows: Sequence[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in rows]
        urgent = is_urgent()
        self._pending.extend(
            _Pending(kind, row, future, urgent) for row, future in zip(rows, futures, strict=True)
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_while_pending())
        return list(await asyncio.gather(*futures))

    async def _flush_while_pending(self) -> None:
        while self._pending:
            # One turn of the loop lets writers woken by the same event add their rows.
            await asyncio.sleep(0)
            urgent = [p for p in self._pending if p.urgent]
            if urgent:
                batch = urgent
                self._pending = [p for p in self._pending if not p.urgent]
            else:
                batch, self._pending = self._pending, []
            with urgent_if(bool(urgent)):
                await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        by_kind: dict[str, list[tuple[Any, asyncio.Future[Any]]]] = {}
        for pending in batch:
            by_kind.setdefault(pending.kind, []).append((pending.row, pending.answer))
        answered: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            async with self._engines.write() as connection:
                for kind, entries in by_kind.items():
                    answers = await self._handlers[kind](connection, [row for row, _ in entries])
                    answered.extend(zip((f for _, f in entries), answers, strict=True))
        except BaseException as error:
            # Every waiter learns of the failure (or of our cancellation); none is left hanging.
            failure = error if isinstance(error, Exception) else RuntimeError("write cancelled")
            for pending in batch:
                if not pending.answer.done():
                    pending.answer.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        for future, answer in answered:
            if not future.done():
                future.set_result(answer)
