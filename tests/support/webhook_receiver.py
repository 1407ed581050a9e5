"""A customer's webhook receiver on loopback: records every request, answers as told."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Receiver:
    """Answers 200 unless told otherwise: ``answer(500, 500)`` makes the next two answers
    500; ``hang(seconds)`` makes every answer wait that long first."""

    received: list[Received] = field(default_factory=list)
    _answers: deque[int] = field(default_factory=deque)
    _hang_seconds: float = 0.0
    _paths_hanging: set[str] = field(default_factory=set)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, *statuses: int) -> None:
        self._answers.extend(statuses)

    def hang(self, seconds: float, *, path: str | None = None) -> None:
        self._hang_seconds = seconds
        if path:
            self._paths_hanging.add(path)

    def release(self) -> None:
        """Let hanging requests go, so that the server can stop."""
        self._released.set()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def app(self) -> Starlette:
        async def hook(request: Request) -> PlainTextResponse:
            path = request.url.path
            if self._hang_seconds and (not self._paths_hanging or path in self._paths_hanging):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), self._hang_seconds)
            try:
                body = await request.body()
            except ClientDisconnect:  # the sender gave up waiting: it did not get an answer
                return PlainTextResponse("", status_code=499)
            self.received.append(Received(path, dict(request.headers), body, time.monotonic()))
            status = self._answers.popleft() if self._answers else 200
            return PlainTextResponse(f"answered {status}", status_code=status)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
