"""What the API's routes are given by bootstrap: the store, the pipeline entry points, settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from frontdesk.config import Settings
from frontdesk.core.models import Channel
from frontdesk.core.ports import Clock, InboundHandler, InboxFeed, IngestLimiter, Transport
from frontdesk.core.sandbox import SandboxFaults
from frontdesk.core.tokens import Links
from frontdesk.metrics import Metrics
from frontdesk.pipeline.inbound import InboundProcessor
from frontdesk.pipeline.ingest import Ingest
from frontdesk.pipeline.templates import TemplateCatalog

if TYPE_CHECKING:
    from frontdesk.store.secret_box import SecretBox
    from frontdesk.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class ApiServices:
    store: SqlStore
    ingest: Ingest
    templates: TemplateCatalog
    transport: Transport
    feed: InboxFeed
    faults: SandboxFaults
    clock: Clock
    settings: Settings
    metrics: Metrics
    token_secret: str
    links: Links
    inbound: InboundProcessor
    secret_box: SecretBox
    inbound_handlers: Mapping[str, InboundHandler]
    # Tell the webhook dispatcher that messages were queued again (a recovery, a resend).
    webhooks_queued: Callable[[], None]
    # Each API key's allowance of notifications; None: ingest is not limited.
    ingest_limiter: IngestLimiter | None = None

    def fresh_attempts(self) -> dict[Channel, int]:
        return {channel: self.settings.channel(channel).max_attempts for channel in Channel}


def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services
