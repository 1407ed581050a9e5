"""frontdesk as separate role processes — one api, one orchestrator, one worker for every
channel — the way the scale-out configuration runs in production, for the behavioural suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from frontdesk.bootstrap import Frontdesk, build
from tests.support.client import Api, eventually, unique
from tests.support.instance import ADMIN_KEY, FAST_CHANNELS, TEST_ENVIRONMENT, test_settings
from tests.support.process import ServerProcess, migrated

# These processes live as long as the test run: polling less often than an in-process
# instance keeps them from taking the CPU the rest of the suite needs (what they do is woken by
# their own work and by Kafka, not found by polling).
IDLE_POLL_SECONDS = "0.2"


def role_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The settings of an in-process test instance (instance.py), as variables."""
    environment = dict(TEST_ENVIRONMENT)
    for channel, values in FAST_CHANNELS.items():
        for key, value in values.items():
            environment[f"FRONTDESK_CHANNELS__{channel.upper()}__{key.upper()}"] = str(value)
    environment["FRONTDESK_PIPELINE__POLL_SECONDS"] = IDLE_POLL_SECONDS
    return {**environment, **extra}


@asynccontextmanager
async def running_roles(
    database_url: str, environment: Mapping[str, str], directory: Path
) -> AsyncIterator[tuple[Frontdesk, str]]:
    """The roles running, once a notification has gone all the way through them. Yields an
    instance of this test process on the same database and settings, roles not started (for
    what tests read of the store directly), and the api's base URL."""
    variables = role_environment(environment)
    await migrated(database_url, variables)
    roles = {"api": ["api"], "orchestrator": ["orchestrator"], "worker": ["worker"]}
    processes = [
        ServerProcess(database_url, variables, role=role, log_path=directory / f"{name}.log")
        for name, role in roles.items()
    ]
    instance = await build(test_settings(database_url, environment), run_migrations=False)
    try:
        for process in processes:
            await asyncio.to_thread(process.start)
        await _one_goes_through(processes[0].base_url)
        yield instance, processes[0].base_url
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)
        await instance.stop()


async def _one_goes_through(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        api = Api(http)
        user = await api.put_user(unique("probe"))
        template = await api.put_template({"channels": {"in_app": {"title": "Up", "body": "Up"}}})
        response = await api.send(user_id=user, template=template)
        assert response.status_code == 202, response.text

        async def arrived() -> bool:
            return bool((await api.inbox(user))["items"])

        await eventually(arrived, timeout=60)
