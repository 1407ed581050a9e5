"""The scale-out configuration as separate processes — 1 api, 2 orchestrators, 2 workers per
channel on PostgreSQL + Kafka + Redis — with 5,000 notifications over HTTP and 5,000 published
straight to ``notification.events``. One orchestrator and one worker are killed (SIGKILL) in the
middle of the run; every accepted notification is delivered exactly once, counted at the SMTP
server and in the inbox.

The worker killed is an inbox worker: a killed email worker may send again what it had sent but
not yet recorded (SMTP takes no idempotency key; see the README's guarantees). The killed
processes' consumer groups see their partitions move and their records read again, and the
store refuses every second claim."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from email import message_from_bytes
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from frontdesk.transport.kafka import Topics
from tests.support.client import Api, eventually, unique
from tests.support.databases import postgres_count
from tests.support.instance import configured, free_port, providers_environment
from tests.support.process import ServerProcess, migrated

OVER_HTTP = 5_000
PUBLISHED = 5_000
USERS = 50
# Short leases: what a killed process held is taken over within seconds.
QUICK_TAKEOVER = {
    "FRONTDESK_PIPELINE__EVENT_LEASE_SECONDS": "3",
    "FRONTDESK_CHANNELS__EMAIL__LEASE_SECONDS": "5",
    "FRONTDESK_CHANNELS__IN_APP__LEASE_SECONDS": "3",
    "FRONTDESK_CHANNELS__EMAIL__CONCURRENCY": "20",
}

SENT = "SELECT count(*) FROM deliveries WHERE status = 'sent'"
NOT_SENT = "SELECT count(*) FROM deliveries WHERE status <> 'sent'"


class Mailbox:
    """An SMTP server's handler: every message's Message-ID, as many times as it came."""

    def __init__(self) -> None:
        self.message_ids: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message_id = str(message_from_bytes(envelope.original_content or b"")["Message-ID"])
        with self._lock:
            self.message_ids[message_id] += 1
        return "250 OK"


async def _publish(servers: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value=value, key=key.encode()) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


@pytest.mark.timeout(900)
async def test_separate_processes_on_kafka_deliver_everything_once_through_kills(
    tmp_path: Path,
) -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    async with configured("scale-out", tmp_path) as (database, settings):
        environment = {
            **settings,
            **QUICK_TAKEOVER,
            **providers_environment(
                "email",
                {
                    "type": "smtp",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "from": "Shop <shop@example.com>",
                    "tls": "none",
                },
            ),
        }
        await migrated(database, environment)
        roles = {
            "api": ["api"],
            "orchestrator-1": ["orchestrator"],
            "orchestrator-2": ["orchestrator"],
            "email-worker-1": ["worker", "--channels", "email"],
            "email-worker-2": ["worker", "--channels", "email"],
            "inbox-worker-1": ["worker", "--channels", "in_app"],
            "inbox-worker-2": ["worker", "--channels", "in_app"],
        }
        processes = {
            name: ServerProcess(database, environment, role=role, log_path=tmp_path / f"{name}.log")
            for name, role in roles.items()
        }
        for process in processes.values():
            await asyncio.to_thread(process.start)
        try:
            async with processes["api"].client() as http:
                api = Api(http)
                users = [
                    await api.put_user(email=f"{unique('buyer')}@example.com") for _ in range(USERS)
                ]
                template = await api.put_template(
                    {
                        "channels": {
                            "email": {"subject": "Receipt {{ payload.n }}", "html": "<p>Paid</p>"},
                            "in_app": {"title": "Receipt {{ payload.n }}", "body": "Paid"},
                        }
                    }
                )

                def request(n: int) -> dict[str, object]:
                    return {
                        "user_id": users[n % USERS],
                        "template": template,
                        "event_id": f"paid-{n}",
                        "payload": {"n": n},
                    }

                published = asyncio.create_task(
                    _publish(
                        settings["FRONTDESK_TRANSPORT"].removeprefix("kafka://"),
                        Topics(settings["FRONTDESK_TRANSPORT__TOPIC_PREFIX"]).events,
                        [
                            (users[n % USERS], orjson.dumps(request(n)))
                            for n in range(OVER_HTTP, OVER_HTTP + PUBLISHED)
                        ],
                    )
                )
                for start in range(0, OVER_HTTP, 500):
                    response = await api.http.post(
                        "/v1/notifications/batch",
                        json={"notifications": [request(n) for n in range(start, start + 500)]},
                    )
                    assert response.status_code == 200, response.text
                    assert all(r["status"] == "accepted" for r in response.json()["results"])
                await published
                total = OVER_HTTP + PUBLISHED

                async def sent(at_least: int) -> bool:
                    done = await postgres_count(database, SENT)
                    return done >= at_least

                await eventually(lambda: sent(total // 2), timeout=300, interval=0.1)
                processes["orchestrator-1"].kill()
                processes["inbox-worker-1"].kill()
                at_the_kills = await postgres_count(database, SENT)
                assert at_the_kills < 2 * total, "the kills came after the run"
                await eventually(lambda: sent(2 * total), timeout=300, interval=0.5)
                await asyncio.sleep(2)  # anything sent twice would arrive now
        finally:
            for process in processes.values():
                await asyncio.to_thread(process.stop)
            smtp.stop()

        assert await postgres_count(database, "SELECT count(*) FROM notifications") == total
        assert (
            await postgres_count(
                database, "SELECT count(DISTINCT notification_id) FROM inbox_items"
            )
            == total
        )
        assert await postgres_count(database, "SELECT count(*) FROM inbox_items") == total
        assert await postgres_count(database, NOT_SENT) == 0
        assert len(mailbox.message_ids) == total
        assert max(mailbox.message_ids.values()) == 1, "no email was sent twice"


@pytest.mark.timeout(300)
async def test_a_worker_stopped_with_sigterm_finishes_what_it_holds_and_leaves(
    tmp_path: Path,
) -> None:
    async with configured("scale-out", tmp_path) as (database, settings):
        environment = {**settings, **QUICK_TAKEOVER}
        await migrated(database, environment)
        roles = {
            "api": ["api"],
            "orchestrator": ["orchestrator"],
            "leaving-worker": ["worker", "--channels", "in_app"],
            "staying-worker": ["worker", "--channels", "in_app"],
        }
        processes = {
            name: ServerProcess(database, environment, role=role, log_path=tmp_path / f"{name}.log")
            for name, role in roles.items()
        }
        for process in processes.values():
            await asyncio.to_thread(process.start)
        leaving = processes["leaving-worker"].process
        assert leaving is not None
        try:
            async with processes["api"].client() as http:
                api = Api(http)
                user = await api.put_user()
                template = await api.put_template(
                    {"channels": {"in_app": {"title": "Item {{ payload.n }}", "body": "New"}}}
                )
                batch = [
                    {
                        "user_id": user,
                        "template": template,
                        "event_id": unique("evt"),
                        "payload": {"n": n},
                    }
                    for n in range(1_000)
                ]
                for start in range(0, len(batch), 500):
                    response = await api.http.post(
                        "/v1/notifications/batch",
                        json={"notifications": batch[start : start + 500]},
                    )
                    assert response.status_code == 200, response.text

                async def some_delivered() -> bool:
                    return (await api.inbox(user, limit=1))["unread_count"] > 0

                await eventually(some_delivered, timeout=60, interval=0.01)
                leaving.terminate()  # SIGTERM
                exit_code = await asyncio.to_thread(leaving.wait, 30)

                async def all_delivered() -> bool:
                    return (await api.inbox(user, limit=1))["unread_count"] >= len(batch)

                await eventually(all_delivered, timeout=120, interval=0.2)
                await asyncio.sleep(1)  # anything delivered twice would show now
        finally:
            for process in processes.values():
                await asyncio.to_thread(process.stop)

        assert exit_code == 0
        assert await postgres_count(database, "SELECT count(*) FROM inbox_items") == len(batch)
        assert await postgres_count(database, NOT_SENT) == 0
        log = (tmp_path / "leaving-worker.log").read_text()
        assert '"level": "error"' not in log and "Traceback" not in log
