"""The in-app channel: the "provider" is the user's inbox, and open streams are told at once."""

from __future__ import annotations

from collections.abc import Sequence

from frontdesk.core.models import InboxItem
from frontdesk.core.ports import Clock, InboxFeed, InboxStore, OutboundMessage, SendResult
from frontdesk.ids import Prefix, new_id


class InAppProvider:
    name = "in_app"

    def __init__(self, inbox: InboxStore, feed: InboxFeed, clock: Clock) -> None:
        self._inbox = inbox
        self._feed = feed
        self._clock = clock

    async def send(self, message: OutboundMessage) -> SendResult:
        (result,) = await self.send_batch([message])
        return result

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        now = self._clock.now()
        items = [
            InboxItem(
                id=new_id(Prefix.INBOX_ITEM),
                user_id=message.user_id,
                notification_id=message.notification_id,
                delivery_id=message.delivery_id,
                title=str(message.content.get("title", "")),
                body=str(message.content.get("body", "")),
                action_url=message.content.get("action_url"),
                created_at=now,
            )
            for message in messages
        ]
        added = await self._inbox.add_inbox_items(items)
        for user_id in {item.user_id for item, new in zip(items, added, strict=True) if new}:
            self._feed.publish(user_id)
        return [SendResult(provider=self.name, provider_message_id=item.id) for item in items]
