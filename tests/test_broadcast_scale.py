"""A broadcast to 100,000 subscribers: one request, 100,000 deliveries, memory that stays flat,
and a transactional notification sent meanwhile still delivered within a second.

On PostgreSQL the audience is 20,000, and 10,000 through Kafka: one process drives PostgreSQL
about a third as fast as SQLite here (and hands every notification and delivery through Kafka
in the scale-out configuration), and the suite must stay short; the scale-out roles as separate
processes are where PostgreSQL scales."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontdesk.store import tables
from tests.support.client import Api, eventually, unique
from tests.support.instance import CONFIGURATIONS, instance_of_its_own

AUDIENCES = {"sqlite": 100_000, "postgresql": 20_000, "scale-out": 10_000}


def _resident_megabytes() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def _create_users(instance: Any, prefix: str, audience: int) -> list[str]:
    """Arrange only: 100,000 users straight into the store (through the API this would take
    minutes); everything the test checks goes through the API."""
    now = instance.clock.now()
    user_ids = [f"{prefix}-{n:06d}" for n in range(audience)]
    rows = [
        {
            "id": user_id,
            "name": f"Reader {n}",
            "properties": {},
            "consent": {},
            "preferences": {},
            "created_at": now,
            "updated_at": now,
        }
        for n, user_id in enumerate(user_ids)
    ]
    store = instance.store
    async with store._engines.writer.begin() as connection:
        for start in range(0, audience, 5000):
            await store._driver.insert(connection, tables.users, rows[start : start + 5000])
    return user_ids


async def _deliveries_of(instance: Any, broadcast_id: str) -> int:
    d, n = tables.deliveries, tables.notifications
    async with instance.store._engines.reader.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(d.join(n, n.c.id == d.c.notification_id))
            .where(n.c.broadcast_id == broadcast_id)
        )
    return int(count or 0)


@pytest.fixture(params=CONFIGURATIONS)
async def own_instance(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Api, Any, int]]:
    """An instance of its own: the broadcast's backlog must not hold up other tests."""
    async with instance_of_its_own(request.param, tmp_path) as (api, instance):
        yield api, instance, AUDIENCES[request.param]


@pytest.mark.timeout(600)
async def test_a_broadcast_to_100000_subscribers_fans_out_with_flat_memory(
    own_instance: tuple[Api, Any, int],
) -> None:
    api, instance, audience = own_instance
    topic = unique("everyone")
    users = await _create_users(instance, unique("reader"), audience)
    for start in range(0, audience, 10_000):
        response = await api.http.put(
            f"/v1/topics/{topic}/subscribers", json={"user_ids": users[start : start + 10_000]}
        )
        assert response.status_code == 200, response.text
    announcement = await api.put_template(
        {
            "category": "marketing",
            "channels": {"in_app": {"title": "New season", "body": "Hello {{ user.name }}"}},
        }
    )
    receipt = await api.put_template({"channels": {"in_app": {"title": "Receipt", "body": "Paid"}}})
    buyer = await api.put_user()
    baseline = _resident_megabytes()
    peak = baseline
    event_id = unique("season")

    response = await api.send(topic=topic, template=announcement, event_id=event_id)

    assert response.status_code == 202
    broadcast_id = response.json()["id"]

    async def all_delivered_planned() -> bool:
        nonlocal peak
        peak = max(peak, _resident_megabytes())
        return await _deliveries_of(instance, broadcast_id) >= audience

    await asyncio.sleep(2)  # well into the broadcast
    requested = datetime.now(UTC)
    paid = await api.send(user_id=buyer, template=receipt)
    found = await api.settled(paid.json()["id"], timeout=5)
    assert found["deliveries"][0]["status"] == "sent"
    audit = (await api.http.get(f"/v1/notifications/{paid.json()['id']}/audit")).json()["items"]
    sent_at = datetime.fromisoformat(next(e["at"] for e in audit if e["type"] == "delivery.sent"))
    waited = (sent_at - requested).total_seconds()
    timeline = ", ".join(
        f"{e['type']} +{(datetime.fromisoformat(e['at']) - requested).total_seconds():.2f}s"
        for e in audit
    )
    print(f"\na transactional notification, sent {waited:.2f}s after its request: {timeline}")
    assert waited < 1.0, f"a transactional notification waited behind a broadcast: {timeline}"

    await eventually(all_delivered_planned, timeout=300, interval=0.5)
    assert await _deliveries_of(instance, broadcast_id) == audience
    growth = peak - baseline
    print(f"\nbroadcast to {audience:,}: peak RSS {peak:.0f} MB, +{growth:.0f} MB over baseline")
    assert growth < 250, f"memory grew by {growth:.0f} MB during the broadcast"

    repeat = await api.send(topic=topic, template=announcement, event_id=event_id)
    assert repeat.status_code == 200 and repeat.json()["id"] == broadcast_id
