"""Fixtures: the behavioural suite runs once per configuration (support/instance.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from frontdesk.logs import configure_logging
from tests.support.client import Api
from tests.support.clock import MIDNIGHT_IN_PARIS, ManualClock
from tests.support.instance import (
    ADMIN_KEY,
    CONFIGURATIONS,
    configured,
    instance_of_its_own,
    running_instance,
)
from tests.support.roles import running_roles

configure_logging("warning")


@pytest.fixture(scope="session", params=CONFIGURATIONS)
async def configuration(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The database URL and settings of one configuration."""
    async with configured(request.param, tmp_path_factory.mktemp(request.param)) as settings:
        yield settings


@pytest.fixture(scope="session")
def database_url(configuration: tuple[str, dict[str, str]]) -> str:
    return configuration[0]


@pytest.fixture(scope="session")
async def frontdesk(
    configuration: tuple[str, dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[object, str]]:
    """The instance most behavioural tests share, once per configuration: in this process
    with the embedded transport, as separate role processes with the scale-out one."""
    url, environment = configuration
    if "FRONTDESK_TRANSPORT" in environment:
        directory = tmp_path_factory.mktemp("roles")
        async with running_roles(url, environment, directory) as running:
            yield running
        return
    async with running_instance(url, environment=environment) as running:
        yield running


@pytest.fixture(scope="session")
def base_url(frontdesk: tuple[object, str]) -> str:
    return frontdesk[1]


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[Api]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        yield Api(http)


@pytest.fixture(scope="module", params=CONFIGURATIONS)
async def clocked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Api, ManualClock]]:
    """An instance of its own whose clock the test moves (one per test module and store)."""
    clock = ManualClock(MIDNIGHT_IN_PARIS)
    directory = tmp_path_factory.mktemp("clocked")
    async with instance_of_its_own(request.param, directory, clock) as (api, _):
        yield api, clock
