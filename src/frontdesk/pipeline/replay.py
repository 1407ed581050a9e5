"""Replay: give the events of a past period the deliveries a channel never made for them.

The way to backfill a channel added to a template later: each event of the period without a
delivery on the channel is planned again, on that channel only, with its template as it is now
(the version it was accepted with did not have the channel), through every rule of the
orchestrator. Deliveries are unique per event and channel, so a replay run twice, or an event
that got its delivery meanwhile, adds nothing; the other channels are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from frontdesk.core.models import Channel, Notification
from frontdesk.pipeline.orchestrator import Orchestrator
from frontdesk.pipeline.templates import TemplateCatalog


class ReplayStore(Protocol):
    async def notifications_lacking(
        self,
        channel: Channel,
        since: datetime,
        until: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Notification]: ...


@dataclass(frozen=True, slots=True)
class ReplayReport:
    examined: int  # events of the period with no delivery on the channel
    backfilled: int  # deliveries made on the channel (sent, or skipped by a rule, saying why)
    without_channel: int  # events whose template still has no content for the channel


class Replay:
    def __init__(
        self,
        store: ReplayStore,
        templates: TemplateCatalog,
        orchestrator: Orchestrator,
        *,
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._templates = templates
        self._orchestrator = orchestrator
        self._batch_size = batch_size

    async def run(self, channel: Channel, since: datetime, until: datetime | None) -> ReplayReport:
        examined = backfilled = without_channel = 0
        after: tuple[datetime, str] | None = None
        while True:
            events = await self._store.notifications_lacking(
                channel, since, until, after, self._batch_size
            )
            if not events:
                break
            after = (events[-1].created_at, events[-1].id)
            examined += len(events)
            latest = await self._templates.latest([e.request.template for e in events])
            on_channel_only = []
            for event in events:
                template = latest.get(event.request.template)
                if template is None or channel.value not in template.body["channels"]:
                    without_channel += 1
                    continue
                on_channel_only.append(
                    replace(
                        event,
                        template_version=template.version,
                        request=replace(event.request, channels=(channel,)),
                    )
                )
            if on_channel_only:
                orchestrations = await self._orchestrator.orchestrate(on_channel_only)
                backfilled += sum(
                    1 for o in orchestrations for d in o.deliveries if d.channel is channel
                )
        return ReplayReport(examined, backfilled, without_channel)
