"""Failover's reading of answers: throttling says the provider is up; an outage opens its
circuit and sends the traffic to the next provider."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.support.clock import ManualClock

from frontdesk.core.breaker import CircuitBreaker, CircuitState
from frontdesk.core.models import Channel
from frontdesk.core.ports import OutboundMessage, SendResult
from frontdesk.core.retry import ProviderUnavailable, Throttled
from frontdesk.metrics import Metrics
from frontdesk.pipeline.failover import FailoverProvider, Route

MESSAGE = OutboundMessage(
    delivery_id="dlv_1",
    notification_id="ntf_1",
    user_id="u",
    channel=Channel.SMS,
    recipient="+14155550100",
    content={"text": "hi"},
    idempotency_key="dlv_1",
    attempt=1,
)


class AnsweringProvider:
    """A provider that gives the answers it was handed, in order."""

    def __init__(self, name: str, *answers: SendResult | Exception) -> None:
        self.name = name
        self._answers = list(answers)

    async def send(self, message: OutboundMessage) -> SendResult:
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _chain(*providers: AnsweringProvider) -> tuple[FailoverProvider, list[CircuitBreaker]]:
    breakers = [CircuitBreaker(failure_run=2) for _ in providers]
    routes = [Route(p, b) for p, b in zip(providers, breakers, strict=True)]
    clock = ManualClock(datetime(2026, 11, 24, tzinfo=UTC))
    return FailoverProvider(Channel.SMS, routes, clock, Metrics(), timeout_seconds=1), breakers


async def test_throttling_answers_never_open_the_circuit() -> None:
    throttled = [Throttled("429", retry_after=1) for _ in range(5)]
    chain, (breaker,) = _chain(AnsweringProvider("twilio", *throttled))

    for _ in range(5):
        with pytest.raises(Throttled):
            await chain.send(MESSAGE)

    assert breaker.state is CircuitState.CLOSED


async def test_an_outage_opens_the_circuit_and_the_next_provider_takes_the_traffic() -> None:
    down = AnsweringProvider("primary", ProviderUnavailable("503"), ProviderUnavailable("503"))
    backup = AnsweringProvider("backup", *(SendResult(provider="backup") for _ in range(3)))
    chain, (primary_breaker, _) = _chain(down, backup)

    answers = [await chain.send(MESSAGE) for _ in range(3)]

    assert [a.provider for a in answers] == ["backup"] * 3
    assert primary_breaker.state is CircuitState.OPEN
