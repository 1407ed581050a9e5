"""frontdesk as separate role processes on PostgreSQL — one API, two orchestrators, two
workers — delivers every accepted notification exactly once, though an orchestrator and a
worker are killed (SIGKILL) in the middle of the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.client import Api, eventually, unique
from tests.support.databases import create_postgres_database, drop_postgres_database, postgres_count
from tests.support.process import ServerProcess, migrated

NOTIFICATIONS = 2_000
# Short leases: what a killed process held is taken over within seconds.
QUICK_TAKEOVER = {
    "FRONTDESK_PIPELINE__EVENT_LEASE_SECONDS": "3",
    "FRONTDESK_CHANNELS__EMAIL__LEASE_SECONDS": "3",
    "FRONTDESK_CHANNELS__IN_APP__LEASE_SECONDS": "3",
}

SENT = "SELECT count(*) FROM deliveries WHERE status = 'sent'"
NOT_SENT = "SELECT count(*) FROM deliveries WHERE status <> 'sent'"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.mark.timeout(300)
async def test_separate_roles_deliver_everything_once_through_kills(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    roles = {
        "api": ServerProcess(database, QUICK_TAKEOVER, role=["api"]),
        "orchestrator 1": ServerProcess(database, QUICK_TAKEOVER, role=["orchestrator"]),
        "orchestrator 2": ServerProcess(database, QUICK_TAKEOVER, role=["orchestrator"]),
        "worker 1": ServerProcess(
            database, QUICK_TAKEOVER, role=["worker", "--channels", "email,in_app"]
        ),
        "worker 2": ServerProcess(
            database, QUICK_TAKEOVER, role=["worker", "--channels", "email,in_app"]
        ),
    }
    for name, process in roles.items():
        process.log_path = tmp_path / f"{name.replace(' ', '-')}.log"
        await asyncio.to_thread(process.start)
    try:
        async with roles["api"].client() as http:
            api = Api(http)
            buyer = await api.put_user(email=f"{unique('buyer')}@example.com")
            template = await api.put_template(
                {
                    "channels": {
                        "email": {"subject": "Receipt {{ payload.n }}", "html": "<p>Paid</p>"},
                        "in_app": {"title": "Receipt {{ payload.n }}", "body": "Paid"},
                    }
                }
            )
            for start in range(0, NOTIFICATIONS, 500):
                response = await api.http.post(
                    "/v1/notifications/batch",
                    json={
                        "notifications": [
                            {
                                "user_id": buyer,
                                "template": template,
                                "event_id": unique("paid"),
                                "payload": {"n": n},
                            }
                            for n in range(start, start + 500)
                        ]
                    },
                )
                assert response.status_code == 200, response.text

            async def sent(at_least: int) -> bool:
                done = await postgres_count(database, SENT)
                return done >= at_least

            await eventually(lambda: sent(NOTIFICATIONS // 2), timeout=120, interval=0.1)
            roles["orchestrator 1"].kill()
            roles["worker 1"].kill()
            at_the_kills = await postgres_count(database, SENT)
            assert at_the_kills < 2 * NOTIFICATIONS, "the kills came after the run"
            await eventually(lambda: sent(2 * NOTIFICATIONS), timeout=180, interval=0.5)
    finally:
        for process in roles.values():
            await asyncio.to_thread(process.stop)

    assert await postgres_count(database, "SELECT count(*) FROM notifications") == NOTIFICATIONS
    assert await postgres_count(database, "SELECT count(*) FROM inbox_items") == NOTIFICATIONS
    assert await postgres_count(database, "SELECT count(*) FROM sandbox_messages") == NOTIFICATIONS
    assert await postgres_count(database, NOT_SENT) == 0
