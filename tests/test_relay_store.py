"""The store's side of the Kafka transport: work handed over is taken by id once, whatever
copies of its reference arrive, and comes back when whoever had it dies. The roles are not
started here: the test plays the relay and the consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from frontdesk.bootstrap import Frontdesk, build, ensure_admin_key
from frontdesk.core.models import Channel
from tests.support import instance as test_instance
from tests.support.client import Api
from tests.support.clock import ManualClock
from tests.support.instance import ADMIN_KEY, configured
from tests.support.serving import serving

HOLD = 30.0
LEASE = 10.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def idle(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Api, Frontdesk, ManualClock]]:
    """An API that admits notifications, and nobody who takes them."""
    clock = ManualClock(datetime.now(UTC))
    async with configured(request.param, tmp_path) as (url, environment):
        instance = await build(test_instance.test_settings(url, environment), clock=clock)
        await ensure_admin_key(instance)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            async with (
                serving(instance.app()) as base_url,
                httpx.AsyncClient(base_url=base_url, headers=headers) as http,
            ):
                yield Api(http), instance, clock
        finally:
            await instance.stop()


async def _accepted(api: Api) -> str:
    user = await api.put_user(email="reader@example.com")
    template = await api.put_template({"channels": {"email": {"subject": "Hi", "html": "<p>"}}})
    response = await api.send(user_id=user, template=template)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_an_event_is_taken_once_however_many_copies_of_its_reference_arrive(
    idle: tuple[Api, Frontdesk, ManualClock],
) -> None:
    api, instance, _ = idle
    notification_id = await _accepted(api)
    (reference,) = await instance.store.hand_over_events(10, HOLD)

    first = await instance.store.claim_notifications_by_id([reference, reference], LEASE)
    again = await instance.store.claim_notifications_by_id([reference], LEASE)

    assert [n.id for n in first] == [notification_id]
    assert again == []


async def test_an_event_on_its_way_is_handed_over_again_only_after_its_hold(
    idle: tuple[Api, Frontdesk, ManualClock],
) -> None:
    api, instance, clock = idle
    await _accepted(api)
    (first,) = await instance.store.hand_over_events(10, HOLD)
    assert await instance.store.hand_over_events(10, HOLD) == []

    clock.advance(seconds=HOLD + 1)
    (second,) = await instance.store.hand_over_events(10, HOLD)

    assert second.id == first.id
    assert await instance.store.claim_notifications_by_id([first], LEASE) == [], "stale copy"
    assert len(await instance.store.claim_notifications_by_id([second], LEASE)) == 1


async def test_an_event_whose_orchestrator_died_comes_back_when_its_lease_runs_out(
    idle: tuple[Api, Frontdesk, ManualClock],
) -> None:
    api, instance, clock = idle
    await _accepted(api)
    (reference,) = await instance.store.hand_over_events(10, HOLD)
    await instance.store.claim_notifications_by_id([reference], LEASE)
    assert await instance.store.hand_over_events(10, HOLD) == []

    clock.advance(seconds=LEASE + 1)

    assert [r.id for r in await instance.store.hand_over_events(10, HOLD)] == [reference.id]


async def test_a_delivery_is_sent_by_one_worker_and_comes_back_if_that_worker_dies(
    idle: tuple[Api, Frontdesk, ManualClock],
) -> None:
    api, instance, clock = idle
    await _accepted(api)
    (event,) = await instance.store.hand_over_events(10, HOLD)
    notifications = await instance.store.claim_notifications_by_id([event], LEASE)
    await instance.orchestrator.orchestrate(notifications)
    (reference,) = await instance.store.hand_over_deliveries(Channel.EMAIL, 10, HOLD)

    taken = await instance.store.claim_deliveries_by_id(Channel.EMAIL, [reference] * 2, LEASE)
    again = await instance.store.claim_deliveries_by_id(Channel.EMAIL, [reference], LEASE)
    clock.advance(seconds=LEASE + 1)
    (orphan,) = await instance.store.hand_over_deliveries(Channel.EMAIL, 10, HOLD)
    stale = await instance.store.claim_deliveries_by_id(Channel.EMAIL, [reference], LEASE)
    retaken = await instance.store.claim_deliveries_by_id(Channel.EMAIL, [orphan], LEASE)

    assert len(taken) == 1 and taken[0].attempts == 1
    assert again == []
    assert orphan.id == reference.id and orphan.attempts == 1
    assert stale == [], "the first attempt's reference no longer takes it"
    assert len(retaken) == 1 and retaken[0].attempts == 2
