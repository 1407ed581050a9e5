"""The sandbox provider: records exactly what would have been sent, for any channel.

It is the default wherever no real provider is configured, so a new installation works end to
end at once, and tests and staging see the real rendered content and email headers.
Operators can switch on faults (``/v1/sandbox/faults``) to rehearse provider failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from frontdesk.core.models import Channel
from frontdesk.core.ports import Clock, OutboundMessage, SandboxMessage, SandboxStore, SendResult
from frontdesk.core.retry import PermanentError, RetryableError
from frontdesk.core.sandbox import Fault, FaultMode, SandboxFaults
from frontdesk.ids import Prefix, new_id


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self,
        channel: Channel,
        store: SandboxStore,
        faults: SandboxFaults,
        clock: Clock,
        *,
        sender: str = "frontdesk <noreply@frontdesk.invalid>",
    ) -> None:
        self._channel = channel
        self._store = store
        self._faults = faults
        self._clock = clock
        self._sender = sender

    async def send(self, message: OutboundMessage) -> SendResult:
        (result,) = await self.send_batch([message])
        if isinstance(result, Exception):
            raise result
        return result

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | Exception]:
        results: list[SendResult | Exception] = []
        recorded: list[SandboxMessage] = []
        now = self._clock.now()
        faults = await self._faults.take(self._channel, len(messages))
        for message, fault in zip(messages, faults, strict=True):
            if fault is not None and fault.mode is FaultMode.HANG:
                await asyncio.Event().wait()  # until the worker's timeout cancels us
            if fault is not None:
                results.append(_fault_error(fault))
                continue
            recorded.append(
                SandboxMessage(
                    id=new_id(Prefix.MESSAGE),
                    delivery_id=message.delivery_id,
                    notification_id=message.notification_id,
                    channel=message.channel,
                    recipient=message.recipient,
                    content={k: v for k, v in message.content.items() if k != "headers"},
                    headers=self._email_headers(message, now)
                    if message.channel is Channel.EMAIL
                    else {},
                    created_at=now,
                )
            )
            results.append(SendResult(provider=self.name, provider_message_id=recorded[-1].id))
        if recorded:
            await self._store.record_sandbox_messages(recorded)
        return results

    def _email_headers(self, message: OutboundMessage, now: datetime) -> dict[str, str]:
        return {
            "From": self._sender,
            "To": message.recipient or "",
            "Subject": str(message.content.get("subject", "")),
            "Date": format_datetime(now),
            "Message-ID": f"<{message.delivery_id}@frontdesk>",
            "MIME-Version": "1.0",
            "Content-Type": "multipart/alternative"
            if message.content.get("text")
            else "text/html; charset=utf-8",
            **message.content.get("headers", {}),
        }


def _fault_error(fault: Fault) -> Exception:
    if fault.mode is FaultMode.PERMANENT:
        return PermanentError("sandbox fault: permanent error", code="sandbox_fault")
    return RetryableError("sandbox fault: temporary error", retry_after=fault.retry_after_seconds)
