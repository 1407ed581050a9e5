"""The console's provider health (what this process's metrics know) and the suppression list."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from prometheus_client.metrics import MetricWrapperBase

from frontdesk.api.pages.console_session import (
    ConsoleRoute,
    OperatorSession,
    operator,
    operator_form,
    page_context,
)
from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.models import Channel
from frontdesk.core.times import rfc3339
from frontdesk.metrics import Metrics

router = APIRouter(route_class=ConsoleRoute)

SUPPRESSIBLE_CHANNELS = [Channel.EMAIL.value, Channel.SMS.value, Channel.PUSH.value]
_SETTLED_WELL = {"sent", "delivered"}
_SUPPRESSIONS_SHOWN = 500


@dataclass(slots=True)
class ProviderHealth:
    channel: str
    provider: str
    circuit_open: bool = False
    sends: float = 0
    errors: float = 0
    seconds_total: float = 0
    timed_sends: float = 0
    sends_per_second: float | None = None
    recent_error_rate: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.sends if self.sends else None

    @property
    def mean_send_ms(self) -> float | None:
        return 1000 * self.seconds_total / self.timed_sends if self.timed_sends else None


@dataclass(slots=True)
class ProviderReading:
    """The counters at one moment; two readings give the rates between them."""

    at: float
    sends: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)


@router.get("/console/providers", response_class=HTMLResponse)
async def providers_page(
    request: Request,
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    health = _provider_health(services.metrics)
    # The counters only grow since the process started; the rate now is the change since this
    # page was last read, kept on the application (one per running instance, like its metrics).
    reading = ProviderReading(
        at=time.monotonic(),
        sends={key: row.sends for key, row in health.items()},
        errors={key: row.errors for key, row in health.items()},
    )
    previous: ProviderReading | None = getattr(request.app.state, "console_provider_reading", None)
    request.app.state.console_provider_reading = reading
    interval = reading.at - previous.at if previous else None
    if previous and interval:
        for key, row in health.items():
            sends = row.sends - previous.sends.get(key, 0)
            errors = row.errors - previous.errors.get(key, 0)
            row.sends_per_second = sends / interval
            row.recent_error_rate = errors / sends if sends else None
    return templates.TemplateResponse(
        request,
        "console/providers.html",
        page_context(
            request,
            session,
            section="providers",
            providers=sorted(health.values(), key=lambda row: (row.channel, row.provider)),
            interval=interval,
        ),
    )


@router.get("/console/suppressions", response_class=HTMLResponse)
async def suppressions_page(
    request: Request,
    channel: str = "",
    added: str = "",
    removed: str = "",
    problem: str = "",
    session: OperatorSession = Depends(operator),
    services: ApiServices = Depends(get_services),
) -> HTMLResponse:
    shown_channel = channel if channel in SUPPRESSIBLE_CHANNELS else None
    rows = await services.store.list_suppressions(shown_channel, None, _SUPPRESSIONS_SHOWN)
    return templates.TemplateResponse(
        request,
        "console/suppressions.html",
        page_context(
            request,
            session,
            section="suppressions",
            channels=SUPPRESSIBLE_CHANNELS,
            channel=shown_channel or "",
            suppressions=[{**row, "created_at": rfc3339(row["created_at"])} for row in rows],
            most_shown=_SUPPRESSIONS_SHOWN,
            added=added,
            removed=removed,
            problem=bool(problem),
        ),
    )


@router.post("/console/suppressions")
async def add_suppression(
    form: dict[str, str] = Depends(operator_form),
    services: ApiServices = Depends(get_services),
) -> RedirectResponse:
    channel, address = form.get("channel", ""), form.get("address", "").strip()
    if channel not in SUPPRESSIBLE_CHANNELS or not address:
        return _back({"problem": "1"})
    reason = form.get("reason", "").strip() or "added by an operator"
    await services.store.put_suppression(channel, address, reason)
    return _back({"added": address})


@router.post("/console/suppressions/remove")
async def remove_suppression(
    form: dict[str, str] = Depends(operator_form),
    services: ApiServices = Depends(get_services),
) -> RedirectResponse:
    address = form.get("address", "")
    await services.store.delete_suppression(form.get("channel", ""), address)
    return _back({"removed": address})


def _provider_health(metrics: Metrics) -> dict[tuple[str, str], ProviderHealth]:
    health: dict[tuple[str, str], ProviderHealth] = {}

    def row(labels: dict[str, str]) -> ProviderHealth:
        key = (labels["channel"], labels["provider"])
        return health.setdefault(key, ProviderHealth(*key))

    for labels, value in _samples(metrics.circuit_open, "frontdesk_provider_circuit_open"):
        row(labels).circuit_open = value > 0
    for labels, value in _samples(metrics.deliveries, "frontdesk_deliveries_total"):
        if labels["provider"] == "none":  # settled without a send: expired before it went
            continue
        provider = row(labels)
        provider.sends += value
        if labels["status"] not in _SETTLED_WELL:
            provider.errors += value
    for labels, value in _samples(metrics.send_seconds, "frontdesk_send_seconds_sum"):
        row(labels).seconds_total = value
    for labels, value in _samples(metrics.send_seconds, "frontdesk_send_seconds_count"):
        row(labels).timed_sends = value
    return health


def _samples(metric: MetricWrapperBase, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(sample.labels), sample.value)
        for family in metric.collect()
        for sample in family.samples
        if sample.name == name
    ]


def _back(notice: dict[str, Any]) -> RedirectResponse:
    return RedirectResponse("/console/suppressions?" + urlencode(notice), status_code=303)
