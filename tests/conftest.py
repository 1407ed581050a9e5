"""Fixtures: the behavioural suite runs once per store (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from frontdesk.logs import configure_logging
from tests.support.client import Api
from tests.support.clock import MIDNIGHT_IN_PARIS, ManualClock
from tests.support.databases import create_postgres_database, drop_postgres_database, sqlite_url
from tests.support.instance import ADMIN_KEY, instance_of_its_own, running_instance

configure_logging("warning")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("sqlite"))
        return
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(scope="session")
async def frontdesk(database_url: str) -> AsyncIterator[tuple[object, str]]:
    async with running_instance(database_url) as running:
        yield running


@pytest.fixture(scope="session")
def base_url(frontdesk: tuple[object, str]) -> str:
    return frontdesk[1]


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[Api]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        yield Api(http)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def clocked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Api, ManualClock]]:
    """An instance of its own whose clock the test moves (one per test module and store)."""
    clock = ManualClock(MIDNIGHT_IN_PARIS)
    directory = tmp_path_factory.mktemp("clocked")
    async with instance_of_its_own(request.param, directory, clock) as (api, _):
        yield api, clock
