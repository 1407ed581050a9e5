"""Prometheus metrics, one registry per running instance (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "frontdesk_notifications_total",
            "Notification requests by ingest outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "frontdesk_deliveries_total",
            "Delivery attempts settled, by channel, provider and resulting status",
            ["channel", "provider", "status"],
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "frontdesk_send_seconds",
            "Time a provider took to answer one send",
            ["channel", "provider"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "frontdesk_http_requests_total",
            "HTTP requests by route and status code",
            ["method", "route", "status_code"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
