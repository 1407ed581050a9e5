"""Failover: while the primary email provider is down, mail goes through the next one, and
back to the primary once it recovers. No message is lost, none is sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.client import Api, eventually, unique
from tests.support.instance import (
    CONFIGURATIONS,
    free_port,
    instance_of_its_own,
    providers_environment,
)

OPEN_SECONDS = 1


class Mailbox:
    """An SMTP server's handler that keeps what it received."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.message_ids.append(str(message_from_bytes(content)["Message-ID"]))
        return "250 OK"


@pytest.fixture(params=CONFIGURATIONS)
async def with_a_down_primary(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Api, int]]:
    primary_port = free_port()  # nothing listens there yet: the primary is down
    environment = providers_environment(
        "email",
        {
            "name": "primary",
            "type": "smtp",
            "host": "127.0.0.1",
            "port": primary_port,
            "from": "Shop <shop@example.com>",
            "tls": "none",
            "circuit_failures": 2,
            "circuit_open_seconds": OPEN_SECONDS,
        },
        {"name": "backup", "type": "sandbox"},
    )
    async with instance_of_its_own(request.param, tmp_path, environment=environment) as (api, _):
        yield api, primary_port


async def _send_mail(api: Api, count: int) -> list[str]:
    template = await api.put_template(
        {"channels": {"email": {"subject": "Receipt", "html": "<p>Paid</p>"}}}
    )
    ids = []
    for _ in range(count):
        user = await api.put_user(email=f"{unique('buyer')}@example.com")
        response = await api.send(user_id=user, template=template)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


async def _deliveries(api: Api, notification_ids: list[str]) -> list[dict[str, Any]]:
    settled = await asyncio.gather(*(api.settled(n, timeout=20) for n in notification_ids))
    return [n["deliveries"][0] for n in settled]


async def _sandboxed_delivery_ids(api: Api) -> list[str]:
    return [m["delivery_id"] for m in await api.sandbox(channel="email", limit=1000)]


@pytest.mark.timeout(120)
async def test_mail_fails_over_while_the_primary_is_down_and_returns_when_it_recovers(
    with_a_down_primary: tuple[Api, int],
) -> None:
    api, primary_port = with_a_down_primary

    during_outage = await _deliveries(api, await _send_mail(api, 6))

    assert {d["status"] for d in during_outage} == {"sent"}
    assert {d["provider"] for d in during_outage} == {"sandbox"}
    audit = (await api.http.get("/v1/audit?type=delivery.sent&limit=100")).json()["items"]
    assert any("failover from: primary" in (entry["reason"] or "") for entry in audit)
    metrics = (await api.http.get("/metrics")).text
    assert 'frontdesk_provider_circuit_open{channel="email",provider="primary"} 1.0' in metrics
    assert "frontdesk_provider_failovers_total" in metrics

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=primary_port)
    controller.start()
    try:
        await asyncio.sleep(OPEN_SECONDS + 0.2)  # the circuit half-opens: the next send probes

        async def back_on_primary() -> list[dict[str, Any]] | None:
            deliveries = await _deliveries(api, await _send_mail(api, 3))
            return deliveries if {d["provider"] for d in deliveries} == {"primary"} else None

        after_recovery = await eventually(back_on_primary, timeout=20, interval=0.2)
    finally:
        controller.stop()

    assert {d["status"] for d in after_recovery} == {"sent"}
    sandboxed = await _sandboxed_delivery_ids(api)
    mailed = [message_id.strip("<>").split("@")[0] for message_id in mailbox.message_ids]
    everything = sandboxed + mailed
    assert len(everything) == len(set(everything)), "a message went out twice"
    for delivery in during_outage + after_recovery:
        assert delivery["id"] in everything, "a message was lost"
    assert {d["id"] for d in after_recovery} <= set(mailed)
