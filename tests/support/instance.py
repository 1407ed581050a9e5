"""A real frontdesk instance serving HTTP on a loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from frontdesk.bootstrap import Frontdesk, build, ensure_admin_key
from frontdesk.config import load_settings
from frontdesk.core.ports import Clock
from frontdesk.transport.kafka import KafkaTransport
from tests.support.client import Api
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    reachable_redis,
    sqlite_url,
)
from tests.support.kafka import broker_url, kafka_environment
from tests.support.serving import free_port as free_port  # where many tests look for it
from tests.support.serving import serving

ADMIN_KEY = "fd_test_admin_key_0123456789abcdef"

# Fast loops and short backoff so behaviour shows within a test's patience.
TEST_ENVIRONMENT = {
    "FRONTDESK_ADMIN_KEY": ADMIN_KEY,
    # Own work wakes the loops at once; polling finds only delayed work come due. Each idle
    # poll is a transaction per loop, and the shared instances idle through the whole run: at
    # 0.05 s they took 60 % (SQLite) and 35 % (PostgreSQL) of a core doing nothing.
    "FRONTDESK_PIPELINE__POLL_SECONDS": "0.2",
    "FRONTDESK_DATABASE__SQLITE_SYNCHRONOUS": "NORMAL",
    "FRONTDESK_CATEGORIES__MARKETING__FREQUENCY_CAP": "{ count = 3, per_seconds = 86400 }",
    # A fixed key (generated once for the tests) for webhook secrets at rest.
    "FRONTDESK_WEBHOOKS__ENCRYPTION_KEYS": '["tVqCy6Rp7tnTT7sQ5QmN1y5gV9C1c7bq8Q3nY2lK0hI="]',
}
FAST_CHANNELS = {
    channel: {
        "max_attempts": 3,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
        "timeout_seconds": 1.0,
        "lease_seconds": 5.0,
    }
    for channel in ("email", "sms", "push", "in_app", "webhook")
}


def test_settings(database_url: str, extra: Mapping[str, str] | None = None) -> Any:
    environment = {**TEST_ENVIRONMENT, "FRONTDESK_DATABASE_URL": database_url, **(extra or {})}
    for channel, values in FAST_CHANNELS.items():
        for key, value in values.items():
            environment.setdefault(
                f"FRONTDESK_CHANNELS__{channel.upper()}__{key.upper()}", str(value)
            )
    return load_settings(None, environment)


def toml_inline(value: Any) -> str:
    """A value as TOML, inline: how a test puts a provider's table in a FRONTDESK_* variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_inline(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"no TOML for {type(value).__name__}")


def providers_environment(channel: str, *tables: Mapping[str, Any]) -> dict[str, str]:
    """``[[providers.<channel>]]`` tables, in order, as the variable that configures them."""
    return {f"FRONTDESK_PROVIDERS__{channel.upper()}": toml_inline(list(tables))}


@asynccontextmanager
async def running_instance(
    database_url: str,
    clock: Clock | None = None,
    environment: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[Frontdesk, str]]:
    instance = await build(test_settings(database_url, environment), clock=clock)
    await ensure_admin_key(instance)
    instance.start({"orchestrator", "worker"})
    if isinstance(instance.transport, KafkaTransport):
        await asyncio.wait_for(instance.transport.consuming(), 60)
    try:
        async with serving(instance.app()) as base_url:
            yield instance, base_url
    finally:
        await instance.stop()


# The behavioural suite runs on each: the embedded transport on SQLite and on PostgreSQL, and
# the scale-out backends (PostgreSQL, Kafka, Redis).
CONFIGURATIONS = ("sqlite", "postgresql", "scale-out")


@asynccontextmanager
async def configured(store: str, directory: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A fresh database for ``store`` (one of CONFIGURATIONS), and the settings that go with
    it: for scale-out, topics, a consumer group and Redis keys of its own. Dropped afterwards."""
    if store == "sqlite":
        yield sqlite_url(directory), {}
        return
    environment: dict[str, str] = {}
    if store == "scale-out":
        environment = kafka_environment(broker_url(directory / "tansu.log"))
        environment["FRONTDESK_REDIS_URL"] = await reachable_redis()
        environment["FRONTDESK_REDIS__KEY_PREFIX"] = environment[
            "FRONTDESK_TRANSPORT__TOPIC_PREFIX"
        ]
    url = await create_postgres_database()
    try:
        yield url, environment
    finally:
        await drop_postgres_database(url)


@asynccontextmanager
async def instance_of_its_own(
    store: str,
    directory: Path,
    clock: Clock | None = None,
    environment: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[Api, Frontdesk]]:
    """A fresh database and an instance serving it, with an admin client; dropped afterwards.
    ``environment`` adds FRONTDESK_* settings (providers, say: see providers_environment)."""
    async with (
        configured(store, directory) as (url, settings),
        running_instance(url, clock, {**settings, **(environment or {})}) as (instance, base_url),
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as http,
    ):
        yield Api(http), instance
