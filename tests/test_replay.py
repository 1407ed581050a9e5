"""Replay: a channel added to a template after its events were delivered is backfilled by
``frontdesk replay``, with one delivery per event on that channel and nothing new elsewhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from frontdesk.store import tables
from tests.support.client import Api, eventually, unique
from tests.support.instance import ADMIN_KEY

EVENTS = 1_000


async def _count(instance: Any, notification_ids: list[str], channel: str, status: str) -> int:
    d = tables.deliveries
    async with instance.store._engines.reader.connect() as connection:
        found = await connection.scalar(
            select(func.count()).where(
                d.c.notification_id.in_(notification_ids),
                d.c.channel == channel,
                d.c.status == status,
            )
        )
    return int(found or 0)


async def _replay(database_url: str, since: datetime, channel: str) -> str:
    environment = {
        **os.environ,
        "FRONTDESK_DATABASE_URL": database_url,
        "FRONTDESK_ADMIN_KEY": ADMIN_KEY,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "frontdesk",
            "replay",
            "--since",
            since.isoformat(),
            "--channel",
            channel,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_channel_added_later_is_backfilled_once_and_nothing_else_moves(
    api: Api, frontdesk: tuple[Any, str], database_url: str
) -> None:
    instance, _ = frontdesk
    template_id = unique("receipt")
    in_app_only = {"channels": {"in_app": {"title": "Paid", "body": "Order {{ payload.n }}"}}}
    await api.put_template(in_app_only, template_id)
    buyer = await api.put_user(email=f"{unique('buyer')}@example.com")
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids: list[str] = []
    for start in range(0, EVENTS, 500):
        response = await api.http.post(
            "/v1/notifications/batch",
            json={
                "notifications": [
                    {
                        "user_id": buyer,
                        "template": template_id,
                        "event_id": unique("paid"),
                        "payload": {"n": n},
                    }
                    for n in range(start, start + 500)
                ]
            },
        )
        assert response.status_code == 200, response.text
        ids += [result["id"] for result in response.json()["results"]]

    async def in_app_delivered() -> bool:
        return await _count(instance, ids, "in_app", "sent") == EVENTS

    await eventually(in_app_delivered, timeout=60)
    with_email = {
        "channels": {
            **in_app_only["channels"],
            "email": {"subject": "Receipt {{ payload.n }}", "html": "<p>Paid</p>"},
        }
    }
    await api.put_template(with_email, template_id)

    said = await _replay(database_url, since, "email")
    again = await _replay(database_url, since, "email")

    assert f"{EVENTS} deliveries made" in said
    assert "0 deliveries made" in again

    async def emails_sent() -> bool:
        return await _count(instance, ids, "email", "sent") == EVENTS

    await eventually(emails_sent, timeout=60)
    assert await _count(instance, ids, "in_app", "sent") == EVENTS
    d = tables.deliveries
    async with instance.store._engines.reader.connect() as connection:
        per_channel = dict(
            (
                await connection.execute(
                    select(d.c.channel, func.count())
                    .where(d.c.notification_id.in_(ids))
                    .group_by(d.c.channel)
                )
            ).all()
        )
    assert per_channel == {"in_app": EVENTS, "email": EVENTS}
