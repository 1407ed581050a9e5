"""Product services publish NotificationRequested records straight to ``notification.events``:
they are admitted like a POST, a malformed one goes to ``notification.events.invalid`` with its
reason, and the records after it are processed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from frontdesk.bootstrap import build, ensure_admin_key
from frontdesk.transport.kafka import KafkaTransport
from tests.support import instance as test_instance
from tests.support.client import Api, eventually, unique
from tests.support.instance import ADMIN_KEY, configured, free_port, instance_of_its_own
from tests.support.kafka import tansu_broker
from tests.support.serving import serving


@pytest.fixture
async def scale_out(tmp_path: Path) -> AsyncIterator[tuple[Api, KafkaTransport, str]]:
    async with instance_of_its_own("scale-out", tmp_path) as (api, instance):
        assert isinstance(instance.transport, KafkaTransport)
        servers = ",".join(instance.settings.transport.bootstrap_servers)
        yield api, instance.transport, servers


async def _publish(servers: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def _read_all(servers: str, topic: str, expected: int) -> list[Any]:
    """The records of every partition of ``topic``, once ``expected`` have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []

        async def arrived() -> bool:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            return len(records) >= expected

        await eventually(arrived, timeout=30)
        return records
    finally:
        await consumer.stop()


async def test_a_malformed_record_goes_to_the_invalid_topic_and_the_next_ones_are_delivered(
    scale_out: tuple[Api, KafkaTransport, str],
) -> None:
    api, transport, servers = scale_out
    user = await api.put_user()
    template = await api.put_template(
        {"channels": {"in_app": {"title": "Order {{ payload.n }}", "body": "Shipped"}}}
    )

    def requested(n: int, event_id: str | None = None) -> bytes:
        body = {"event_id": event_id or unique("evt"), "user_id": user, "template": template}
        return orjson.dumps({**body, "payload": {"n": n}})

    repeated = unique("evt")
    await _publish(
        servers,
        transport.topics.events,
        [
            (user, requested(1)),
            (user, b"{this is not json"),
            (user, orjson.dumps({"event_id": unique("evt"), "user_id": user})),
            (user, requested(2, repeated)),
            (user, requested(2, repeated)),  # the same event again: admitted once
            (user, requested(3)),
        ],
    )

    invalid = await _read_all(servers, transport.topics.invalid_events, expected=2)

    reasons = sorted(dict(record.headers)["frontdesk-error"].decode() for record in invalid)
    assert len(invalid) == 2
    assert reasons[0].startswith("400") and "not valid JSON" in reasons[0]
    assert reasons[1].startswith("422") and "template: required field is missing" in reasons[1]
    assert b"{this is not json" in {record.value for record in invalid}, "kept as it came"

    async def delivered() -> list[str] | None:
        items = (await api.inbox(user, limit=10))["items"]
        return sorted(item["title"] for item in items) if len(items) >= 3 else None

    assert await eventually(delivered, timeout=30) == ["Order 1", "Order 2", "Order 3"]


async def test_what_is_accepted_while_kafka_is_away_is_delivered_once_it_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()  # where Kafka will be, once it is started
    async with configured("scale-out", tmp_path) as (database, settings):
        environment = {**settings, "FRONTDESK_TRANSPORT": f"kafka://127.0.0.1:{port}"}
        instance = await build(test_instance.test_settings(database, environment))
        await ensure_admin_key(instance)
        instance.start({"orchestrator", "worker"})
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            async with (
                serving(instance.app()) as base_url,
                httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http,
            ):
                api = Api(http)
                user = await api.put_user()
                template = await api.put_template(
                    {"channels": {"in_app": {"title": "While away", "body": "Kept"}}}
                )
                while_away = await api.send(user_id=user, template=template)
                not_ready = await http.get("/readyz")

                with tansu_broker(tmp_path / "late-broker.log", port):

                    async def delivered() -> bool:
                        return bool((await api.inbox(user))["items"])

                    await eventually(delivered, timeout=60)
                    ready = await http.get("/readyz")
        finally:
            await instance.stop()

    assert while_away.status_code == 202, "accepted: it is in the store"
    assert not_ready.status_code == 503 and "kafka" in not_ready.json()["detail"]
    assert ready.status_code == 200 and ready.json()["transport"] == "kafka"
