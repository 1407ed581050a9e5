"""What every real provider module shares: its options, what it is built with, its HTTP client.

A provider is one module, ``frontdesk.providers.<type>``, found by the ``type`` of its
configuration table. It defines:

- ``CHANNEL``: the channel it delivers (``Channel.EMAIL``, ...);
- ``Options``: a ``ProviderOptions`` model of its own keys (``extra="forbid"``, so a typo in the
  configuration stops the start naming the key);
- ``build(options, context) -> Provider``.

Its provider may also have ``inbound_handlers() -> list[InboundHandler]`` for the callbacks it
receives (receipts, bounces, replies), and ``aclose()`` to release connections at shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict

from frontdesk.core.ports import Clock


class ProviderOptions(BaseModel):
    """A provider's own keys. ``name``, ``type``, ``rate_per_second``, ``burst`` and the circuit
    breaker's keys are common to every provider and read by the pipeline, not here."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class ProviderContext:
    name: str  # the configured name (or the type): how audit, metrics and logs call it
    clock: Clock
    timeout_seconds: float  # the channel's send timeout
    public_url: str  # frontdesk's own public base URL, for callbacks (status, bounces)


def http_client(base_url: str, context: ProviderContext, **options: object) -> httpx.AsyncClient:
    """A pooled client for one provider account: connections are reused across sends."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(context.timeout_seconds),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        follow_redirects=False,
        **options,  # type: ignore[arg-type]
    )
