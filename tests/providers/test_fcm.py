"""Push through Firebase Cloud Messaging (HTTP v1), end to end against a fake FCM on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.fcm import FakeFcm, serving
from tests.providers.support import (
    CRITICAL_FOR_TEN_MINUTES,
    add_devices,
    device_tokens,
    eventually_forgotten,
    everything_shown,
    fcm_service_account,
)
from tests.support.client import Api, unique
from tests.support.instance import instance_of_its_own, providers_environment

PUSH = {"channels": {"push": {"title": "Order {{ payload.order }}", "body": "It has shipped"}}}
WITH_DATA = {
    "channels": {
        "push": {
            "title": "Order {{ payload.order }}",
            "body": "It has shipped",
            "data": {"order": "{{ payload.order }}", "screen": "orders"},
        }
    }
}


@dataclass(frozen=True)
class Setup:
    api: Api
    fcm: FakeFcm
    private_key_pem: str


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    directory = tmp_path_factory.mktemp("fcm")
    fake, account_file, private_key_pem = fcm_service_account(directory)
    async with serving(fake):
        provider = {
            "type": "fcm",
            "service_account_file": str(account_file),
            "base_url": fake.url,
            "token_url": fake.token_url,  # over the key's own token_uri
        }
        environment = providers_environment("push", provider)
        async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
            yield Setup(api, fake, private_key_pem)


@pytest.fixture(autouse=True)
def _no_failure_outlives_its_test(setup: Setup) -> Iterator[None]:
    yield
    setup.fcm.clear_failures()


async def _notify(
    api: Api, template: dict[str, Any] = PUSH, **options: Any
) -> tuple[str, str, str]:
    """A user with one FCM device, and a push notification to them: (user, token, id)."""
    token = unique("fcm-token") + ":APA91b" + "x" * 40
    user_id = await api.put_user(name="Ada")
    await add_devices(api, user_id, (token, "fcm"))
    template_id = await api.put_template(template)
    response = await api.send(
        user_id=user_id, template=template_id, payload={"order": "A-17"}, **options
    )
    assert response.status_code == 202, response.text
    return user_id, token, response.json()["id"]


def _sent_to(fcm: FakeFcm, token: str) -> list[dict[str, Any]]:
    return [message for message in fcm.delivered if message.get("token") == token]


def _attempts_for(fcm: FakeFcm, token: str) -> list[float]:
    return [attempt.at for attempt in fcm.attempts if attempt.message.get("token") == token]


async def test_push_reaches_fcm_and_records_its_message_name(setup: Setup) -> None:
    _, token, notification_id = await _notify(setup.api, WITH_DATA)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]

    assert push["status"] == "sent"
    assert push["provider"] == "fcm"
    (message,) = _sent_to(setup.fcm, token)
    assert message["notification"] == {"title": "Order A-17", "body": "It has shipped"}
    assert message["data"] == {"order": "A-17", "screen": "orders"}
    assert push["provider_message_id"].startswith("projects/frontdesk-test/messages/")
    assert message["android"] == {"priority": "normal"}


async def test_critical_push_is_high_priority_and_expires_with_the_notification(
    setup: Setup,
) -> None:
    _, token, notification_id = await _notify(setup.api, **CRITICAL_FOR_TEN_MINUTES)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]

    assert push["status"] == "sent"
    (message,) = _sent_to(setup.fcm, token)
    assert message["android"]["priority"] == "high"
    assert 590 <= int(message["android"]["ttl"].removesuffix("s")) <= 600
    apns_headers = message["apns"]["headers"]
    assert apns_headers["apns-priority"] == "10"
    assert 590 <= int(apns_headers["apns-expiration"]) - time.time() <= 600


async def test_a_topic_token_is_sent_to_the_topic(setup: Setup) -> None:
    user_id = await setup.api.put_user(name="Ada")
    await add_devices(setup.api, user_id, ("/topics/news", "fcm"))
    template_id = await setup.api.put_template(PUSH)

    response = await setup.api.send(user_id=user_id, template=template_id, payload={"order": 1})

    (push,) = (await setup.api.settled(response.json()["id"]))["deliveries"]
    assert push["status"] == "sent"
    assert "token" not in setup.fcm.delivered[-1]
    assert setup.fcm.delivered[-1]["topic"] == "news"


async def test_access_token_is_fetched_once_and_reused(setup: Setup) -> None:
    _, _, first = await _notify(setup.api)
    await setup.api.settled(first)
    fetched = setup.fcm.token_requests

    _, _, second = await _notify(setup.api)

    assert (await setup.api.settled(second))["deliveries"][0]["status"] == "sent"
    assert setup.fcm.token_requests == fetched


async def test_revoked_access_token_is_replaced_and_the_send_goes_through(setup: Setup) -> None:
    _, _, first = await _notify(setup.api)
    await setup.api.settled(first)
    fetched = setup.fcm.token_requests
    setup.fcm.revoke_access_tokens()

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 1
    assert setup.fcm.token_requests == fetched + 1
    assert len(_sent_to(setup.fcm, token)) == 1


async def test_quota_exceeded_is_retried_no_sooner_than_retry_after(setup: Setup) -> None:
    setup.fcm.fail_next("QUOTA_EXCEEDED", retry_after=1)

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    first, second = _attempts_for(setup.fcm, token)
    assert second - first >= 1.0


@pytest.mark.parametrize("error_code", ["UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"])
async def test_dead_token_fails_and_is_forgotten(setup: Setup, error_code: str) -> None:
    setup.fcm.fail_next(error_code)

    user_id, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert push["attempts"] == 1
    assert error_code in push["reason"]
    assert await eventually_forgotten(setup.api, user_id, token)


async def test_third_party_auth_error_fails_without_forgetting_the_token(setup: Setup) -> None:
    setup.fcm.fail_next("THIRD_PARTY_AUTH_ERROR")

    user_id, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert "THIRD_PARTY_AUTH_ERROR" in push["reason"]
    assert token in await device_tokens(setup.api, user_id)


async def test_unavailable_is_retried_then_sent(setup: Setup) -> None:
    setup.fcm.fail_next("UNAVAILABLE")

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    assert len(_attempts_for(setup.fcm, token)) == 2


async def test_a_send_that_hangs_past_the_timeout_is_retried(setup: Setup) -> None:
    setup.fcm.hang_next(2.0)

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    assert len(_sent_to(setup.fcm, token)) == 1


async def test_secrets_appear_in_no_log_and_no_reason(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    # The level an operator runs at; below it, libraries (hpack, aiosqlite) log raw headers
    # and query parameters themselves.
    caplog.set_level(logging.INFO)
    setup.fcm.revoke_access_tokens()
    setup.fcm.fail_next("INTERNAL", times=3)

    _, _, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "dead"
    shown = await everything_shown(setup.api, notification_id, push, caplog.text)
    key_body = setup.private_key_pem.splitlines()[1]
    assert key_body not in shown
    assert "ya29." not in shown
    assert "Bearer" not in shown
