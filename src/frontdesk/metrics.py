"""Prometheus metrics, one registry per running instance (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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

        self.circuit_open = Gauge(
            "frontdesk_provider_circuit_open",
            "1 while a provider's circuit breaker is open or half-open, else 0",
            ["channel", "provider"],
            registry=self.registry,
        )
        self.failovers = Counter(
            "frontdesk_provider_failovers_total",
            "Sends that went to a later provider because an earlier one was down",
            ["channel", "from_provider", "to_provider"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
