"""Fresh databases for a test run: a SQLite file, or a PostgreSQL database of its own; and the
machine's Redis."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

POSTGRES_ADMIN_DSN = os.environ.get(
    "FRONTDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / f'frontdesk-{uuid.uuid4().hex[:8]}.db'}"


async def create_postgres_database() -> str:
    """A new, empty database on the machine's PostgreSQL; skip (or fail in CI) when absent."""
    name = f"frontdesk_test_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL at {POSTGRES_ADMIN_DSN} is not reachable: {error}"
        if in_ci():
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def postgres_count(url: str, query: str) -> int:
    """What a ``SELECT count(*) ...`` answers on a PostgreSQL database."""
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


REDIS_URL = os.environ.get("FRONTDESK_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def reachable_redis() -> str:
    """The machine's Redis; skip (or fail in CI) when absent."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        message = f"Redis at {REDIS_URL} is not reachable: {error}"
        if in_ci():
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    finally:
        await client.aclose()
    return REDIS_URL
