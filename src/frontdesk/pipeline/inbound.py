"""What providers tell us afterwards, applied: receipts, bounces, complaints, STOP and START.

Handlers (one per provider callback) check the signature and read the body into events; this
applies them. A hard bounce or a complaint suppresses the address; a STOP opts the number out
(deliveries to it are skipped, as for any choice of the recipient's) until a START.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from frontdesk.core.models import Delivery, DeliveryStatus, SuppressionKind
from frontdesk.core.ports import InboundEvent, InboundKind
from frontdesk.logs import get_logger

log = get_logger(__name__)


class InboundStore(Protocol):
    async def put_suppression(
        self,
        channel: str,
        address: str,
        reason: str,
        kind: SuppressionKind = SuppressionKind.SUPPRESSED,
    ) -> dict[str, Any]: ...

    async def delete_suppression(
        self, channel: str, address: str, kind: SuppressionKind | None = None
    ) -> bool: ...

    async def record_receipt(
        self, provider_message_id: str, status: DeliveryStatus, reason: str
    ) -> Delivery | None: ...


class InboundProcessor:
    def __init__(self, store: InboundStore) -> None:
        self._store = store

    async def apply(self, events: Sequence[InboundEvent]) -> None:
        for event in events:
            await self._apply(event)

    async def _apply(self, event: InboundEvent) -> None:
        channel = event.channel.value
        if event.kind is InboundKind.OPT_OUT and event.address:
            await self._store.put_suppression(
                channel,
                event.address,
                f"opted out by a reply to {event.provider}",
                SuppressionKind.OPTED_OUT,
            )
        elif event.kind is InboundKind.OPT_IN and event.address:
            await self._store.delete_suppression(channel, event.address, SuppressionKind.OPTED_OUT)
        elif event.kind is InboundKind.COMPLAINT and event.address:
            await self._store.put_suppression(
                channel, event.address, f"{event.provider}: complaint {event.reason}".strip()
            )
        elif event.kind is InboundKind.BOUNCE and event.address and event.permanent:
            await self._store.put_suppression(
                channel, event.address, f"{event.provider}: hard bounce {event.reason}".strip()
            )
        elif event.kind is InboundKind.FAILED and event.address and event.permanent:
            # The provider gave up because the address itself is dead (a number out of service).
            await self._store.put_suppression(
                channel, event.address, f"{event.provider}: {event.reason}".strip()
            )
        if event.provider_message_id and event.kind is not InboundKind.OPT_OUT:
            await self._receipt(event, event.provider_message_id)

    async def _receipt(self, event: InboundEvent, provider_message_id: str) -> None:
        # A complaint comes after delivery: the address is suppressed, the delivery stands.
        failed = event.kind is InboundKind.FAILED or (
            event.kind is InboundKind.BOUNCE and event.permanent
        )
        if event.kind is InboundKind.DELIVERED:
            status, reason = DeliveryStatus.DELIVERED, f"{event.provider} confirmed delivery"
        elif failed:
            status, reason = (
                DeliveryStatus.FAILED,
                f"{event.provider}: {event.kind.value} {event.reason}",
            )
        else:
            return  # a soft bounce: the provider is still trying
        found = await self._store.record_receipt(provider_message_id, status, reason.strip())
        if found is None:
            log.info(
                "receipt for an unknown message", provider=event.provider, kind=event.kind.value
            )
