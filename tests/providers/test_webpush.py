"""Push to browsers through Web Push (RFC 8030, 8291, 8292), end to end against a fake push
service on loopback that decrypts what it receives; and a user with a browser and a phone."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.fcm import FakeFcm
from tests.fakes.fcm import serving as serving_fcm
from tests.fakes.webpush import FakePushService, serving
from tests.providers.support import (
    CRITICAL_FOR_TEN_MINUTES,
    add_devices,
    device_tokens,
    eventually_forgotten,
    everything_shown,
    fcm_service_account,
    pem,
)
from tests.support.client import Api, eventually
from tests.support.instance import instance_of_its_own, providers_environment

PUSH = {
    "channels": {
        "push": {
            "title": "Order {{ payload.order }}",
            "body": "It has shipped",
            "data": {"order": "{{ payload.order }}"},
        }
    }
}


@dataclass(frozen=True)
class Setup:
    api: Api
    push_service: FakePushService
    fcm: FakeFcm
    vapid_private_key_pem: str


# The fake push service is on loopback, which subscriptions may reach only when allowlisted.
LOOPBACK_ALLOWED = {"FRONTDESK_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]'}


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    directory = tmp_path_factory.mktemp("webpush")
    vapid_key_pem = pem(ec.generate_private_key(ec.SECP256R1()))
    vapid_key_file = directory / "vapid.pem"
    vapid_key_file.write_text(vapid_key_pem)
    fcm, account_file, _ = fcm_service_account(directory)
    async with serving(FakePushService(), directory) as push_service, serving_fcm(fcm):
        webpush_provider = {
            "type": "webpush",
            "subject": "mailto:ops@shop.example",
            "vapid_private_key_file": str(vapid_key_file),
            "ca_file": str(push_service.ca_file),
        }
        fcm_provider = {
            "type": "fcm",
            "service_account_file": str(account_file),
            "base_url": fcm.url,
            "token_url": fcm.token_url,
        }
        environment = {
            **providers_environment("push", webpush_provider, fcm_provider),
            **LOOPBACK_ALLOWED,
        }
        async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
            yield Setup(api, push_service, fcm, vapid_key_pem)


@pytest.fixture(autouse=True)
def _no_failure_outlives_its_test(setup: Setup) -> Iterator[None]:
    yield
    setup.push_service.clear_failures()


async def _user_with(api: Api, *devices: tuple[str, str]) -> str:
    user_id = await api.put_user(name="Ada")
    await add_devices(api, user_id, *devices)
    return user_id


async def _subscribed_user(setup: Setup) -> tuple[str, str]:
    """A new browser subscription and a user with it as their only device: (it, user)."""
    subscription = setup.push_service.subscribe()
    return subscription, await _user_with(setup.api, (subscription, "webpush"))


async def _notify(api: Api, user_id: str, **options: Any) -> str:
    template_id = await api.put_template(PUSH)
    response = await api.send(
        user_id=user_id, template=template_id, payload={"order": "A-17"}, **options
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_push_reaches_the_browser_encrypted_and_records_its_location(
    setup: Setup,
) -> None:
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["provider"] == "webpush"
    (received,) = setup.push_service.pushes_to(subscription)
    assert received.message == {
        "title": "Order A-17",
        "body": "It has shipped",
        "data": {"order": "A-17"},
    }
    assert received.headers["ttl"] == "86400"
    assert received.headers["urgency"] == "normal"
    assert received.headers["content-encoding"] == "aes128gcm"
    assert push["provider_message_id"].startswith(f"{setup.push_service.url}/message/")


async def test_critical_push_is_urgent_and_lives_as_long_as_the_notification(
    setup: Setup,
) -> None:
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id, **CRITICAL_FOR_TEN_MINUTES)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    (received,) = setup.push_service.pushes_to(subscription)
    assert received.headers["urgency"] == "high"
    assert 590 <= int(received.headers["ttl"]) <= 600


async def test_too_many_requests_is_retried_no_sooner_than_retry_after(setup: Setup) -> None:
    setup.push_service.fail_next(429, retry_after=1)
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    first, second = setup.push_service.pushes_to(subscription)
    assert second.at - first.at >= 1.0


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscription_fails_and_is_forgotten(setup: Setup, status: int) -> None:
    setup.push_service.fail_next(status)
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert push["attempts"] == 1
    assert str(status) in push["reason"]
    assert await eventually_forgotten(setup.api, user_id, subscription)


async def test_a_subscription_at_a_loopback_address_is_refused_and_forgotten(
    setup: Setup, tmp_path: Path
) -> None:
    vapid_key_file = tmp_path / "vapid.pem"
    vapid_key_file.write_text(setup.vapid_private_key_pem)
    provider = {
        "type": "webpush",
        "subject": "mailto:ops@shop.example",
        "vapid_private_key_file": str(vapid_key_file),
        "ca_file": str(setup.push_service.ca_file),
    }
    environment = providers_environment("push", provider)  # nothing allowlisted
    async with instance_of_its_own("sqlite", tmp_path, environment=environment) as (api, _):
        subscription = setup.push_service.subscribe()
        user_id = await _user_with(api, (subscription, "webpush"))

        notification_id = await _notify(api, user_id)

        (push,) = (await api.settled(notification_id))["deliveries"]
        assert push["status"] == "failed" and "address_refused" in push["reason"]
        assert await eventually_forgotten(api, user_id, subscription)
    assert setup.push_service.pushes_to(subscription) == []


@pytest.mark.parametrize(
    "token",
    [
        "not a subscription",
        json.dumps({"endpoint": "http://push.example/x", "keys": {"p256dh": "A", "auth": "B"}}),
    ],
)
async def test_a_token_that_is_no_https_subscription_fails_and_is_forgotten(
    setup: Setup, token: str
) -> None:
    user_id = await _user_with(setup.api, (token, "webpush"))

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert "not a PushSubscription" in push["reason"]

    async def forgotten() -> bool:
        user = (await setup.api.http.get(f"/v1/users/{user_id}")).json()
        return user["devices"] == []

    assert await eventually(forgotten, timeout=5)


async def test_payload_too_large_fails_and_keeps_the_subscription(setup: Setup) -> None:
    setup.push_service.fail_next(413)
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert "413" in push["reason"]
    assert subscription in await device_tokens(setup.api, user_id)


async def test_a_push_that_hangs_past_the_timeout_is_retried(setup: Setup) -> None:
    setup.push_service.hang_next(2.0)
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    assert len(setup.push_service.pushes_to(subscription)) == 2


async def test_a_browser_and_an_android_phone_both_get_the_push(setup: Setup) -> None:
    subscription = setup.push_service.subscribe()
    fcm_token = "phone-token:APA91b" + "x" * 40
    user_id = await _user_with(setup.api, (subscription, "webpush"), (fcm_token, "fcm"))

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert sorted(push["provider"].split("+")) == ["fcm", "webpush"]
    (received,) = setup.push_service.pushes_to(subscription)
    assert received.message is not None
    assert received.message["title"] == "Order A-17"
    (message,) = [m for m in setup.fcm.delivered if m.get("token") == fcm_token]
    assert message["notification"]["title"] == "Order A-17"


async def test_secrets_appear_in_no_log_and_no_reason(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    # The level an operator runs at; below it, libraries (hpack, aiosqlite) log raw headers
    # and query parameters themselves.
    caplog.set_level(logging.INFO)
    setup.push_service.fail_next(503, times=3)
    subscription, user_id = await _subscribed_user(setup)

    notification_id = await _notify(setup.api, user_id)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "dead"
    shown = await everything_shown(setup.api, notification_id, push, caplog.text)
    assert setup.vapid_private_key_pem.splitlines()[1] not in shown
    for received in setup.push_service.pushes_to(subscription):
        assert received.headers["authorization"] not in shown
    assert json.loads(subscription)["keys"]["auth"] not in shown
