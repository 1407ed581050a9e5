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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from frontdesk.core.ports import Clock
from frontdesk.core.ssrf import Network


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
    # Where addresses that users hand us (Web Push subscriptions) may point besides public
    # addresses: webhooks.allow_networks (see ssrf_guard.py).
    allowed_networks: Sequence[Network] = ()


def http_client(base_url: str, context: ProviderContext, **options: object) -> httpx.AsyncClient:
    """A pooled client for one provider account: connections are reused across sends."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(context.timeout_seconds),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        follow_redirects=False,
        **options,  # type: ignore[arg-type]
    )


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """How long the provider asked us to wait, in seconds, from its Retry-After header: a whole
    number of seconds or an HTTP-date (RFC 9110, section 10.2.3). None when the header is absent
    or unreadable; never negative (a date already past means at once)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC with no zone named
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's body when it is a JSON object, else empty: an error may come as HTML or
    plain text from a proxy in front of the provider."""
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` until ``moment``; 0 once it has passed."""
    return max(0, int((moment - now).total_seconds()))
