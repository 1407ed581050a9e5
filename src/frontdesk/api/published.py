"""NotificationRequested records that product services publish straight to the event log (the
Kafka topic ``notification.events``) instead of calling the API: the same JSON object as the body
of ``POST /v1/notifications``, checked by the same model and admitted by the same ingest, with
the same idempotency key. See docs/kafka.md."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from frontdesk.api.problems import validation_error
from frontdesk.api.schemas import NotificationIn
from frontdesk.core.ports import Clock
from frontdesk.errors import FrontdeskError
from frontdesk.pipeline.ingest import Ingest


class PublishedRequests:
    def __init__(self, ingest: Ingest, clock: Clock) -> None:
        self._ingest = ingest
        self._clock = clock

    async def admit(self, values: Sequence[bytes]) -> list[str | None]:
        """None for each record admitted (or a repeat of one admitted before), else what is
        wrong with it, as the API would have answered."""
        problems: list[str | None] = []
        direct: list[tuple[int, NotificationIn]] = []
        for index, value in enumerate(values):
            try:
                body = NotificationIn.model_validate_json(value)
            except ValidationError as error:
                problems.append(error_title(validation_error(list(error.errors()))))
                continue
            problems.append(None)
            if body.topic is not None:
                result = await self._ingest.accept_broadcast(
                    body.to_request(self._clock.now()), body.topic
                )
                problems[index] = _problem(result)
            else:
                direct.append((index, body))
        if direct:
            now = self._clock.now()
            results = await self._ingest.accept([body.to_request(now) for _, body in direct])
            for (index, _), result in zip(direct, results, strict=True):
                problems[index] = _problem(result)
        return problems


def _problem(result: object) -> str | None:
    return error_title(result) if isinstance(result, FrontdeskError) else None


def error_title(error: FrontdeskError) -> str:
    """As the API would answer: "422 Invalid input: template: no template named 'x'"."""
    return f"{error.status} {error.title}: {error.detail}"
