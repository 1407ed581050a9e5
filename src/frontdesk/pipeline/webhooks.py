"""Outbound webhooks: a webhook delivery becomes one message per endpoint that takes its event
type, and each message is posted, signed, until its endpoint takes it.

The channel worker hands a delivery to ``WebhookFanOut``, which queues the messages (the
delivery is then ``sent``: handed to its endpoints). ``WebhookDispatcher`` posts them: only a
2xx is success, a redirect is not followed, 410 Gone disables the endpoint, anything else is
retried on the configured schedule (with jitter, honouring Retry-After within bounds). Every
endpoint has its own circuit breaker, rate limit and in-flight limit, so that one slow or dead
endpoint delays nothing but its own messages; one that keeps failing for too long is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from frontdesk.core.breaker import CircuitBreaker
from frontdesk.core.models import Actor, AuditEntry, AuditType, DeliveryStatus
from frontdesk.core.ports import (
    Clock,
    OutboundMessage,
    SendResult,
    WebhookAnswer,
    WebhookPoster,
    WebhookRequest,
    WebhookUnreachable,
)
from frontdesk.core.retry import PermanentError
from frontdesk.core.signatures import signature_headers
from frontdesk.core.times import rfc3339
from frontdesk.ids import Prefix, new_id
from frontdesk.logs import get_logger
from frontdesk.pipeline.throttle import TokenBucket

log = get_logger(__name__)

# The most of an answer's body an attempt keeps: enough to see what went wrong.
RESPONSE_CAP = 1024


class WebhookStore(Protocol):
    async def endpoints_for_event(self, user_id: str, event_type: str) -> list[dict[str, Any]]: ...

    async def enqueue_webhook_messages(self, messages: list[dict[str, Any]]) -> list[str]: ...

    async def claim_webhook_messages(
        self, limit: int, lease_seconds: float, skip_endpoints: Collection[str]
    ) -> list[dict[str, Any]]: ...

    async def webhook_endpoint(self, endpoint_id: str) -> dict[str, Any] | None: ...

    async def record_webhook_attempt(
        self,
        message: dict[str, Any],
        attempt: dict[str, Any],
        *,
        next_attempt_at: datetime | None,
        endpoint_failing: bool,
        disable_endpoint: str | None,
        audit: Sequence[AuditEntry] = (),
    ) -> None: ...


class WebhookFanOut:
    """The webhook channel's provider: queues one message per endpoint that takes the event."""

    name = "webhooks"

    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        *,
        max_payload_bytes: int,
        queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_payload_bytes = max_payload_bytes
        self._queued = queued

    async def send(self, message: OutboundMessage) -> SendResult:
        event_type = str(message.content["event_type"])
        data = message.content.get("body")
        body = orjson.dumps(
            {
                "type": event_type,
                "timestamp": rfc3339(self._clock.now()),
                "data": {} if data is None else data,
            }
        )
        if len(body) > self._max_payload_bytes:
            raise PermanentError(
                f"the payload is {len(body)} bytes, over webhooks.max_payload_bytes "
                f"({self._max_payload_bytes})",
                code="payload_too_large",
            )
        endpoints = await self._store.endpoints_for_event(message.user_id, event_type)
        if not endpoints:
            return SendResult(
                provider=self.name,
                status=DeliveryStatus.SKIPPED,
                details={"reason": f"the user has no enabled endpoint that takes {event_type!r}"},
            )
        ids = await self._store.enqueue_webhook_messages(
            [
                {
                    "id": new_id(Prefix.MESSAGE),
                    "endpoint_id": endpoint["id"],
                    "user_id": message.user_id,
                    "notification_id": message.notification_id,
                    "delivery_id": message.delivery_id,
                    "event_type": event_type,
                    "body": body.decode(),
                }
                for endpoint in endpoints
            ]
        )
        self._queued()
        return SendResult(
            provider=self.name,
            provider_message_id=ids[0] if len(ids) == 1 else None,
            details={"endpoints": len(ids), "webhook_ids": ids},
        )


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    retry_schedule_seconds: Sequence[float]
    timeout_seconds: float
    user_agent: str
    concurrency: int = 100
    per_endpoint_concurrency: int = 10
    max_retry_after_seconds: float = 86400
    disable_after_seconds: float = 5 * 86400
    circuit_failures: int = 5
    circuit_open_seconds: float = 60
    lease_seconds: float = 120
    poll_seconds: float = 0.5


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        poster: WebhookPoster,
        unseal: Callable[[str], str],
        clock: Clock,
        settings: DispatchSettings,
    ) -> None:
        self._store = store
        self._poster = poster
        self._unseal = unseal
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def queued(self) -> None:
        """New messages: look for work now, not at the next poll."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        settings = self._settings
        while not stopping.is_set():
            free = settings.concurrency - len(self._tasks)
            claimed: list[dict[str, Any]] = []
            if free > 0:
                try:
                    claimed = await self._store.claim_webhook_messages(
                        free, settings.lease_seconds, self._unavailable_endpoints()
                    )
                except Exception:
                    log.exception("claiming webhook messages failed")
            for message in claimed:
                self._start(message)
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), settings.poll_seconds)
                self._wake.clear()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=settings.timeout_seconds)

    def _unavailable_endpoints(self) -> set[str]:
        """Endpoints not to claim for now: at their in-flight limit, or their circuit open."""
        now = self._clock.now()
        busy = {
            endpoint
            for endpoint, count in self._in_flight.items()
            if count >= self._settings.per_endpoint_concurrency
        }
        return busy | {
            endpoint for endpoint, breaker in self._breakers.items() if breaker.is_open(now)
        }

    def _start(self, message: dict[str, Any]) -> None:
        endpoint_id = message["endpoint_id"]
        self._in_flight[endpoint_id] += 1
        task = asyncio.create_task(self.attempt(message))
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self._in_flight[endpoint_id] -= 1
            if not self._in_flight[endpoint_id]:
                del self._in_flight[endpoint_id]
            self._wake.set()

        task.add_done_callback(finished)

    async def attempt(self, message: dict[str, Any]) -> None:
        """One attempt at one message, recorded with what follows from it."""
        try:
            endpoint = await self._store.webhook_endpoint(message["endpoint_id"])
            if endpoint is None:
                return  # deleted since: its messages go with it
            if endpoint["rate_per_second"]:
                await self._bucket(endpoint).take()
            request = self._request(endpoint, message)
            try:
                answer: WebhookAnswer | WebhookUnreachable = await self._poster.post(request)
            except WebhookUnreachable as unreachable:
                answer = unreachable
            await self._settle(endpoint, message, answer)
        except Exception:
            # The lease runs out and the message is attempted again: nothing is lost.
            log.exception("webhook attempt failed", endpoint_id=message["endpoint_id"])

    def _request(self, endpoint: dict[str, Any], message: dict[str, Any]) -> WebhookRequest:
        now = self._clock.now()
        body = message["body"].encode()
        signers = [
            self._unseal(secret["sealed"])
            for secret in endpoint["secrets"]
            if not secret.get("retires_at") or datetime.fromisoformat(secret["retires_at"]) > now
        ]
        headers = {
            **endpoint["headers"],
            "content-type": "application/json",
            "user-agent": self._settings.user_agent,
            **signature_headers(message["id"], int(now.timestamp()), body, signers),
        }
        identity = None
        if endpoint["client_certificate"] and endpoint["client_key_sealed"]:
            identity = (
                endpoint["client_certificate"],
                self._unseal(endpoint["client_key_sealed"]),
            )
        return WebhookRequest(
            endpoint_id=endpoint["id"],
            url=endpoint["url"],
            headers=headers,
            body=body,
            timeout_seconds=endpoint["timeout_seconds"] or self._settings.timeout_seconds,
            client_identity=identity,
        )

    async def _settle(
        self,
        endpoint: dict[str, Any],
        message: dict[str, Any],
        answer: WebhookAnswer | WebhookUnreachable,
    ) -> None:
        now = self._clock.now()
        breaker = self._breakers.setdefault(
            endpoint["id"],
            CircuitBreaker(
                failure_run=self._settings.circuit_failures,
                open_seconds=self._settings.circuit_open_seconds,
            ),
        )
        if isinstance(answer, WebhookUnreachable):
            attempt = _attempt(message, now, None, answer.latency_ms, None, str(answer))
            succeeded, retry_after = False, None
        else:
            succeeded = 200 <= answer.status_code < 300
            error = None if succeeded else f"answered {answer.status_code}"
            attempt = _attempt(
                message, now, answer.status_code, answer.latency_ms, answer.response_start, error
            )
            retry_after = answer.retry_after
        if succeeded:
            breaker.succeeded()
            await self._store.record_webhook_attempt(
                message,
                attempt,
                next_attempt_at=None,
                endpoint_failing=False,
                disable_endpoint=None,
            )
            return
        breaker.failed(now)
        disable = self._disabling(endpoint, answer, now)
        next_attempt_at = None if disable == _GONE else self._next_attempt(message, retry_after)
        # The owner is told in the same commit that disables the endpoint.
        told: list[AuditEntry] = []
        if disable:
            told.append(
                AuditEntry(
                    id=new_id(Prefix.AUDIT),
                    at=now,
                    type=AuditType.ENDPOINT_DISABLED,
                    actor=Actor.WORKER,
                    user_id=endpoint["user_id"],
                    reason=f"endpoint {endpoint['id']} disabled: {disable}",
                )
            )
        await self._store.record_webhook_attempt(
            message,
            attempt,
            next_attempt_at=next_attempt_at,
            endpoint_failing=True,
            disable_endpoint=disable,
            audit=told,
        )
        if disable:
            log.warning("webhook endpoint disabled", endpoint_id=endpoint["id"])

    def _disabling(
        self, endpoint: dict[str, Any], answer: WebhookAnswer | WebhookUnreachable, now: datetime
    ) -> str | None:
        """Why this failure disables the endpoint, if it does."""
        if isinstance(answer, WebhookAnswer) and answer.status_code == 410:
            return _GONE
        failing_since = endpoint["failing_since"]
        limit = timedelta(seconds=self._settings.disable_after_seconds)
        if failing_since is not None and now - failing_since >= limit:
            return f"failing without a break since {failing_since.isoformat()}"
        return None

    def _next_attempt(self, message: dict[str, Any], retry_after: float | None) -> datetime | None:
        """When to try again after this attempt, or None when the schedule is used up."""
        schedule = self._settings.retry_schedule_seconds
        made = int(message["attempts"])
        if made >= len(schedule):
            return None
        # Jitter spreads the retries of a burst of failures over ±20% of the step.
        delay = schedule[made] * random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._settings.max_retry_after_seconds))
        return self._clock.now() + timedelta(seconds=delay)

    def _bucket(self, endpoint: dict[str, Any]) -> TokenBucket:
        rate = float(endpoint["rate_per_second"])
        bucket = self._buckets.get(endpoint["id"])
        if bucket is None:
            bucket = self._buckets[endpoint["id"]] = TokenBucket(rate, max(1, int(rate)))
        return bucket


_GONE = "the endpoint answered 410 Gone"


def _attempt(
    message: dict[str, Any],
    at: datetime,
    status_code: int | None,
    latency_ms: int,
    response: str | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "attempt": message["attempts"],
        "at": at,
        "status_code": status_code,
        "latency_ms": latency_ms,
        "response": response,
        "error": error,
    }
