"""Product services publish NotificationRequested records straight to ``notification.events``:
they are admitted like a POST, a malformed one goes to ``notification.events.invalid`` with its
reason, and the records after it are processed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from frontdesk.transport.kafka import KafkaTransport
from tests.support.client import Api, eventually, unique
from tests.support.instance import instance_of_its_own


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
