"""A channel's providers in order, each behind its circuit breaker and its account's bucket.

A send goes to the first provider whose circuit lets it through. A provider that did not take
the message (refused, 5xx) counts a failure and the next provider is tried at once; a timeout
also counts a failure but is retried later, not sent elsewhere now, because the provider may
have taken it. Which provider took a message, and why earlier ones were passed over, goes on
the delivery's audit; circuits opening and closing go to the log and the metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from frontdesk.core.breaker import CircuitBreaker, CircuitState
from frontdesk.core.models import Channel
from frontdesk.core.ports import Clock, OutboundMessage, Provider, RateLimiter, SendResult
from frontdesk.core.retry import PermanentError, ProviderUnavailable, RetryableError, Throttled
from frontdesk.logs import get_logger
from frontdesk.metrics import Metrics

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """One provider with its guards."""

    provider: Provider
    breaker: CircuitBreaker
    bucket: RateLimiter | None = None


class FailoverProvider:
    def __init__(
        self,
        channel: Channel,
        routes: Sequence[Route],
        clock: Clock,
        metrics: Metrics,
        *,
        timeout_seconds: float,
    ) -> None:
        self.name = "+".join(route.provider.name for route in routes)
        self._channel = channel
        self._routes = routes
        self._clock = clock
        self._metrics = metrics
        self._timeout = timeout_seconds

    async def send(self, message: OutboundMessage) -> SendResult:
        passed_over: list[str] = []
        retry_afters: list[float] = []
        for route in self._routes:
            name = route.provider.name
            if not route.breaker.allows(self._clock.now()):
                passed_over.append(f"{name}: circuit open")
                continue
            if route.bucket is not None:
                await route.bucket.take()
            try:
                result = await asyncio.wait_for(route.provider.send(message), self._timeout)
            except ProviderUnavailable as error:
                self._failed(route)
                passed_over.append(f"{name}: {error}")
                if error.retry_after is not None:
                    retry_afters.append(error.retry_after)
                continue
            except TimeoutError:
                self._failed(route)
                timed_out = RetryableError(f"no answer within {self._timeout:g}s")
                timed_out.provider = name
                raise timed_out from None
            except Throttled as error:
                error.provider = name  # the provider is up: its circuit is left as it is
                raise
            except RetryableError as error:
                self._failed(route)
                error.provider = name
                raise
            except PermanentError as error:
                self._succeeded(route)  # the provider is up; the message was at fault
                error.provider = name
                raise
            self._succeeded(route)
            if passed_over:
                self._metrics.failovers.labels(
                    self._channel.value, self._routes[0].provider.name, name
                ).inc()
                return replace(result, details={**result.details, "failover": passed_over})
            return result
        unavailable = ProviderUnavailable(
            "no provider took the message: " + "; ".join(passed_over),
            # The latest any of them asked to be tried again: the message waits for them all.
            retry_after=max(retry_afters, default=None),
        )
        unavailable.provider = self.name
        raise unavailable

    def _failed(self, route: Route) -> None:
        self._changed(route, route.breaker.failed(self._clock.now()))

    def _succeeded(self, route: Route) -> None:
        self._changed(route, route.breaker.succeeded())

    def _changed(self, route: Route, state: CircuitState | None) -> None:
        if state is None:
            return
        name = route.provider.name
        self._metrics.circuit_open.labels(self._channel.value, name).set(
            0 if state is CircuitState.CLOSED else 1
        )
        log.warning("provider circuit " + state.value, channel=self._channel.value, provider=name)


class PushDispatcher:
    """Push goes to each of the user's devices through the provider its token belongs to
    (FCM, APNs, Web Push). Sent when any device took it; tokens the provider called dead are
    reported so that they are forgotten."""

    def __init__(self, by_type: Mapping[str, FailoverProvider]) -> None:
        self.name = "push"
        self._by_type = by_type

    async def send(self, message: OutboundMessage) -> SendResult:
        devices = json.loads(message.recipient or "[]")
        answers = await asyncio.gather(
            *(self._send_to(device, message) for device in devices), return_exceptions=True
        )
        taken = [a for a in answers if isinstance(a, SendResult)]
        dead = tuple(
            device["token"]
            for device, answer in zip(devices, answers, strict=True)
            if isinstance(answer, PermanentError) and answer.suppress
        )
        if taken:
            message_ids = [a.provider_message_id for a in taken if a.provider_message_id]
            return SendResult(
                provider="+".join(sorted({a.provider for a in taken})),
                # One id fits the column; several (a user's many devices) go in the details.
                provider_message_id=message_ids[0] if len(message_ids) == 1 else None,
                details={
                    "devices": len(devices),
                    "accepted": len(taken),
                    "provider_message_ids": message_ids,
                },
                dead_recipients=dead,
            )
        retryable = [a for a in answers if isinstance(a, RetryableError)]
        if retryable:
            raise retryable[0]
        errors = [a for a in answers if isinstance(a, BaseException)]
        if errors and all(isinstance(e, PermanentError) for e in errors):
            first = errors[0]
            assert isinstance(first, PermanentError)
            raise PermanentError(str(first), code=first.code, suppress=len(dead) == len(devices))
        raise errors[0] if errors else PermanentError("no device to send to", code="no_device")

    async def _send_to(self, device: Mapping[str, str], message: OutboundMessage) -> SendResult:
        route = self._by_type.get(device["provider"])
        if route is None:
            raise PermanentError(
                f"no {device['provider']} provider is configured for push",
                code="provider_not_configured",
            )
        return await route.send(replace(message, recipient=device["token"]))
