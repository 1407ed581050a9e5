"""A channel worker: claims due deliveries of one channel and hands each to its provider.

Each channel has its own worker, its own concurrency limit and its own timeout: a provider that
hangs fills only its own channel's slots (bulkheads). Retries, backoff, dead-lettering and the
audit are layers around ``Provider.send``; providers themselves only send.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from frontdesk.core.models import (
    Actor,
    AuditType,
    Channel,
    Delivery,
    DeliveryStatus,
    delivery_audit,
)
from frontdesk.core.ports import (
    BatchProvider,
    Clock,
    DeliveryOutcome,
    OutboundMessage,
    PipelineStore,
    Provider,
    SendResult,
    Transport,
)
from frontdesk.core.retry import Backoff, PermanentError, RetryableError
from frontdesk.core.rules import addresses, screen
from frontdesk.core.urgency import ALL_LANES, URGENT_LANES, any_urgent, urgent_if
from frontdesk.logs import get_logger
from frontdesk.metrics import Metrics

log = get_logger(__name__)
# The urgent loop is woken by this process's own work; the other loop's polls find the rest, so
# this one looks on its own only now and then.
_WOKEN_ONLY = 30.0


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int
    timeout_seconds: float
    lease_seconds: float
    backoff: Backoff
    poll_seconds: float = 0.5


class ChannelWorker:
    def __init__(
        self,
        channel: Channel,
        providers: Sequence[Provider],
        store: PipelineStore,
        transport: Transport,
        clock: Clock,
        settings: WorkerSettings,
        *,
        metrics: Metrics,
    ) -> None:
        self.channel = channel
        self._metrics = metrics
        self._providers = providers
        self._store = store
        self._transport = transport
        self._clock = clock
        self._settings = settings
        self._in_flight: set[asyncio.Task[None]] = set()
        self._busy = 0
        # A local provider takes a claimed batch (of up to ``concurrency``) in one write. A few
        # batches in flight keep the store busy, and few enough keep what urgent work waits
        # behind short.
        first = providers[0]
        self._batch_provider = first if isinstance(first, BatchProvider) else None
        self._capacity = settings.concurrency * (4 if self._batch_provider else 1)
        # Slots that bulk work leaves free, so that urgent work never waits for a broadcast's
        # sends in flight to finish before it is even claimed.
        self._urgent_reserve = max(1, self._capacity // 5)
        self._slot_freed = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Urgent lanes have a loop of their own, as in the orchestrator, and the reserve of
        slots: an order confirmation is claimed at once, not after the broadcast's batches."""
        bulk_slots = max(1, self._capacity - self._urgent_reserve)
        try:
            await asyncio.gather(
                # Urgent work is claimed whenever a slot is free, at once when this process made
                # it; the other loop claims every lane (urgent first) in batches, and its polls
                # find the rest: work from other processes, delayed work come due.
                self._work(URGENT_LANES, self._capacity, 1, _WOKEN_ONLY, stopping),
                self._work(
                    ALL_LANES,
                    bulk_slots,
                    max(1, bulk_slots // 4),
                    self._settings.poll_seconds,
                    stopping,
                ),
            )
        finally:
            # What is still in flight finishes (or its lease runs out and another worker takes it).
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=self._settings.timeout_seconds)

    async def _work(
        self,
        lanes: frozenset[int],
        slots: int,
        fewest: int,
        poll_seconds: float,
        stopping: asyncio.Event,
    ) -> None:
        """Claim and send these lanes' deliveries while fewer than ``slots`` are in flight (of
        any lane), claiming only when at least ``fewest`` are free, and looking again at least
        every ``poll_seconds``."""
        while not stopping.is_set():
            free = slots - self._busy
            if self._busy and free < fewest:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                with urgent_if(lanes == URGENT_LANES):
                    claimed = await self._transport.claim_deliveries(
                        self.channel, free, self._settings.lease_seconds, lanes
                    )
            except Exception:
                log.exception("claim failed", channel=self.channel.value)
                claimed = []
            if not claimed:
                await _either(
                    self._transport.wait_for_deliveries(self.channel, poll_seconds, lanes),
                    stopping.wait(),
                )
                continue
            claimed = await self._still_wanted(claimed)
            if not claimed:
                continue
            if self._batch_provider is not None:
                size = self._settings.concurrency
                for start in range(0, len(claimed), size):
                    batch = claimed[start : start + size]
                    self._start(self.deliver_batch(self._batch_provider, batch), batch)
            else:
                for delivery in claimed:
                    self._start(self.deliver(delivery), [delivery])

    def _start(self, work: Coroutine[Any, Any, None], deliveries: list[Delivery]) -> None:
        weight = len(deliveries)
        self._busy += weight

        def finished(task: asyncio.Task[None]) -> None:
            self._in_flight.discard(task)
            self._busy -= weight
            self._slot_freed.set()

        with urgent_if(any_urgent(deliveries)):  # the task keeps the urgency it was started with
            task = asyncio.create_task(work)
        self._in_flight.add(task)
        task.add_done_callback(finished)

    async def deliver(self, delivery: Delivery) -> None:
        """One delivery through the channel's providers (see failover.py, which times each
        call: waiting for the account's rate limit is not a timeout)."""
        provider = self._providers[0]
        outcome = self._expired(delivery)
        if outcome is None:
            started = time.perf_counter()
            try:
                result: SendResult | BaseException = await provider.send(self._message(delivery))
            except Exception as error:
                result = error
            self._metrics.send_seconds.labels(self.channel.value, provider.name).observe(
                time.perf_counter() - started
            )
            outcome = self._settle(delivery, provider.name, result)
        await self._record([outcome])

    async def deliver_batch(self, provider: BatchProvider, deliveries: list[Delivery]) -> None:
        """A claimed batch through a local provider (the inbox, the sandbox) in one call."""
        outcomes = [o for o in map(self._expired, deliveries) if o is not None]
        expired = {o.delivery_id for o in outcomes}
        sendable = [d for d in deliveries if d.id not in expired]
        if sendable:
            try:
                results: list[SendResult | BaseException] = list(
                    await asyncio.wait_for(
                        provider.send_batch([self._message(d) for d in sendable]),
                        self._settings.timeout_seconds,
                    )
                )
            except Exception as error:
                results = [error] * len(sendable)
            outcomes.extend(
                self._settle(d, provider.name, r) for d, r in zip(sendable, results, strict=True)
            )
        await self._record(outcomes)

    async def _record(self, outcomes: list[DeliveryOutcome]) -> None:
        try:
            applied = await self._store.save_outcomes(outcomes)
        except Exception:
            # The leases will run out and the deliveries be tried again: nothing is lost.
            log.exception("delivery outcomes not recorded", count=len(outcomes))
            self._transport.release(o.delivery_id for o in outcomes)
            return
        await self._transport.deliveries_done(self.channel, outcomes)
        for outcome, was_applied in zip(outcomes, applied, strict=True):
            self._metrics.deliveries.labels(
                self.channel.value, outcome.provider or "none", outcome.status.value
            ).inc()
            if was_applied and outcome.status is DeliveryStatus.QUEUED:
                self._wake_when_due(outcome)

    async def _still_wanted(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Screen again just before sending: an unsubscribe, an opt-out or a suppression that
        arrived after orchestration stops what is already queued."""
        try:
            users = await self._store.get_users([d.user_id for d in deliveries])
            suppressed = await self._store.suppressed(
                address for user in users.values() for address in addresses(user)
            )
            escalated = [d.escalation_of for d in deliveries if d.escalation_of]
            in_app = await self._store.delivery_statuses(escalated) if escalated else {}
        except Exception:
            log.exception("screening before send failed", channel=self.channel.value)
            # The leases run out and the deliveries are claimed again.
            self._transport.release(d.id for d in deliveries)
            return []
        wanted, stopped = [], []
        for delivery in deliveries:
            user = users.get(delivery.user_id)
            if user is None:
                stopped.append(
                    self._outcome(
                        delivery,
                        DeliveryStatus.SKIPPED,
                        AuditType.SKIPPED,
                        "the user no longer exists",
                    )
                )
                continue
            if delivery.escalation_of and in_app.get(delivery.escalation_of) == "read":
                stopped.append(
                    self._outcome(
                        delivery,
                        DeliveryStatus.SKIPPED,
                        AuditType.SKIPPED,
                        "escalation: the in-app item was read in time",
                    )
                )
                continue
            screening = screen(
                user,
                delivery.channel,
                category=delivery.category,
                template_id=delivery.template_id,
                priority=delivery.priority,
                suppressed=suppressed,
            )
            if screening.status is None:
                wanted.append(delivery)
                continue
            audit_type = (
                AuditType.SUPPRESSED
                if screening.status is DeliveryStatus.SUPPRESSED
                else AuditType.SKIPPED
            )
            stopped.append(
                self._outcome(
                    delivery,
                    screening.status,
                    audit_type,
                    f"{screening.reason} (checked again before sending)",
                )
            )
        if stopped:
            await self._record(stopped)
        return wanted

    def _expired(self, delivery: Delivery) -> DeliveryOutcome | None:
        if delivery.expires_at is None or self._clock.now() < delivery.expires_at:
            return None
        return self._outcome(
            delivery,
            DeliveryStatus.EXPIRED,
            AuditType.EXPIRED,
            f"expired at {delivery.expires_at.isoformat()} before it could be sent",
        )

    @staticmethod
    def _message(delivery: Delivery) -> OutboundMessage:
        return OutboundMessage(
            delivery_id=delivery.id,
            notification_id=delivery.notification_id,
            user_id=delivery.user_id,
            channel=delivery.channel,
            recipient=delivery.recipient,
            content=delivery.content,
            idempotency_key=delivery.id,
            attempt=delivery.attempts,
            priority=delivery.priority,
            expires_at=delivery.expires_at,
        )

    def _settle(
        self, delivery: Delivery, provider: str, result: SendResult | BaseException
    ) -> DeliveryOutcome:
        """What the provider's answer means for the delivery: sent, failed, retry, or dead."""
        if isinstance(result, SendResult) and result.status is DeliveryStatus.SKIPPED:
            # Nothing to send to after all (no webhook endpoint takes this event, say).
            reason = str(result.details.get("reason", f"{result.provider} had nothing to send"))
            return self._outcome(
                delivery,
                DeliveryStatus.SKIPPED,
                AuditType.SKIPPED,
                reason,
                provider=result.provider,
            )
        if isinstance(result, SendResult):
            passed_over = result.details.get("failover")
            accepted = f"accepted by {result.provider}"
            if passed_over:
                accepted += f" (failover from: {'; '.join(passed_over)})"
            if result.dead_recipients:
                accepted += f"; {len(result.dead_recipients)} dead device token(s) forgotten"
            return self._outcome(
                delivery,
                result.status,
                AuditType.SENT,
                accepted,
                provider=result.provider,
                provider_message_id=result.provider_message_id,
                details=result.details,
                dead_recipients=result.dead_recipients,
            )
        if isinstance(result, PermanentError | RetryableError) and result.provider:
            provider = result.provider
        if isinstance(result, PermanentError):
            dead = _recipients(delivery) if result.suppress else ()
            consequence = ""
            if dead:
                consequence = (
                    "; the device token is forgotten"
                    if delivery.channel is Channel.PUSH
                    else f"; the {delivery.channel.value} address is now suppressed"
                )
            return self._outcome(
                delivery,
                DeliveryStatus.FAILED,
                AuditType.FAILED,
                f"{provider}: {result} [{result.code}]{consequence}",
                provider=provider,
                error=f"{result} [{result.code}]",
                dead_recipients=dead,
            )
        if isinstance(result, TimeoutError):
            reason = f"{provider}: no answer within {self._settings.timeout_seconds:g}s"
        elif isinstance(result, RetryableError):
            reason = f"{provider}: {result}"
        else:  # a provider bug must not lose the delivery
            log.error(
                "provider raised an unexpected error",
                provider=provider,
                error_type=type(result).__name__,
            )
            reason = f"{provider}: unexpected {type(result).__name__}"
        retry_after = result.retry_after if isinstance(result, RetryableError) else None
        return self._retry_or_bury(delivery, provider, reason, retry_after)

    def _retry_or_bury(
        self, delivery: Delivery, provider: str, reason: str, retry_after: float | None
    ) -> DeliveryOutcome:
        if delivery.attempts >= delivery.max_attempts:
            return self._outcome(
                delivery,
                DeliveryStatus.DEAD,
                AuditType.DEAD,
                f"retries exhausted after {delivery.attempts} attempts; last error: {reason}",
                provider=provider,
                error=reason,
            )
        delay = self._settings.backoff.delay(delivery.attempts, retry_after=retry_after)
        return self._outcome(
            delivery,
            DeliveryStatus.QUEUED,
            AuditType.RETRIED,
            f"retrying in {delay:.2f}s after: {reason}",
            provider=provider,
            error=reason,
            delay_seconds=delay,
        )

    def _outcome(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        audit_type: AuditType,
        reason: str,
        *,
        provider: str | None = None,
        provider_message_id: str | None = None,
        error: str | None = None,
        delay_seconds: float | None = None,
        details: dict[str, Any] | None = None,
        dead_recipients: tuple[str, ...] = (),
    ) -> DeliveryOutcome:
        now = self._clock.now()
        return DeliveryOutcome(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            status=status,
            at=now,
            provider=provider,
            provider_message_id=provider_message_id,
            reason=None if status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED) else reason,
            last_error=error or delivery.last_error,
            available_at=now + timedelta(seconds=delay_seconds) if delay_seconds else None,
            audit=(delivery_audit(delivery, audit_type, Actor.WORKER, now, reason),),
            details=details or {},
            dead_recipients=dead_recipients,
        )

    def _wake_when_due(self, outcome: DeliveryOutcome) -> None:
        delay = (outcome.available_at - outcome.at).total_seconds() if outcome.available_at else 0
        if delay < self._settings.poll_seconds:
            loop = asyncio.get_running_loop()
            loop.call_later(max(delay, 0), self._transport.deliveries_ready, [self.channel])


def _recipients(delivery: Delivery) -> tuple[str, ...]:
    """The addresses a delivery went to: one, or for push each device's token."""
    if delivery.recipient is None:
        return ()
    if delivery.channel is Channel.PUSH:
        return tuple(device["token"] for device in json.loads(delivery.recipient))
    return (delivery.recipient,)


async def _either(*waits: Coroutine[Any, Any, Any]) -> None:
    """Until the first of ``waits`` is over (the others are cancelled)."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
