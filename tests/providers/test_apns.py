"""Push through Apple's APNs (HTTP/2, provider tokens), end to end against a fake APNs that
speaks HTTP/2 over TLS on loopback."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.apns import FakeApns, Notification, serving
from tests.providers.support import (
    CRITICAL_FOR_TEN_MINUTES,
    add_devices,
    device_tokens,
    eventually_forgotten,
    everything_shown,
    pem,
)
from tests.support.client import Api
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
TOPIC = "com.example.shop"


@dataclass(frozen=True)
class Setup:
    api: Api
    apns: FakeApns
    private_key_pem: str


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    directory = tmp_path_factory.mktemp("apns")
    key = ec.generate_private_key(ec.SECP256R1())
    private_key_pem = pem(key)
    key_file = directory / "AuthKey_ABC123DEFG.p8"
    key_file.write_text(private_key_pem)
    fake = FakeApns("TEAM123456", "ABC123DEFG", key.public_key(), TOPIC)
    async with serving(fake, directory):
        provider = {
            "type": "apns",
            "team_id": "TEAM123456",
            "key_id": "ABC123DEFG",
            "private_key_file": str(key_file),
            "topic": TOPIC,
            "base_url": fake.url,
            "ca_file": str(fake.ca_file),
        }
        environment = providers_environment("push", provider)
        async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
            yield Setup(api, fake, private_key_pem)


@pytest.fixture(autouse=True)
def _no_failure_outlives_its_test(setup: Setup) -> Iterator[None]:
    yield
    setup.apns.clear_failures()


async def _notify(api: Api, **options: Any) -> tuple[str, str, str]:
    """A user with one iOS device, and a push notification to them: (user, token, id)."""
    token = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, like a device token
    user_id = await api.put_user(name="Ada")
    await add_devices(api, user_id, (token, "apns"))
    template_id = await api.put_template(PUSH)
    response = await api.send(
        user_id=user_id, template=template_id, payload={"order": "A-17"}, **options
    )
    assert response.status_code == 202, response.text
    return user_id, token, response.json()["id"]


def _received_by(apns: FakeApns, token: str) -> list[Notification]:
    return [n for n in apns.received if n.device_token == token]


def _delivered_to(apns: FakeApns, token: str) -> list[Notification]:
    return [n for n in apns.delivered if n.device_token == token]


async def test_push_reaches_apns_over_http2_and_records_the_apns_id(setup: Setup) -> None:
    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]

    assert push["status"] == "sent"
    assert push["provider"] == "apns"
    (notification,) = _delivered_to(setup.apns, token)
    assert notification.http_version == "2"
    assert notification.payload == {
        "aps": {"alert": {"title": "Order A-17", "body": "It has shipped"}},
        "order": "A-17",
    }
    assert notification.headers["apns-topic"] == TOPIC
    assert notification.headers["apns-push-type"] == "alert"
    assert push["provider_message_id"] == notification.headers["apns-id"]
    assert notification.headers["apns-priority"] == "10"


async def test_critical_push_goes_at_once_and_expires_with_the_notification(
    setup: Setup,
) -> None:
    _, token, notification_id = await _notify(setup.api, **CRITICAL_FOR_TEN_MINUTES)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]

    assert push["status"] == "sent"
    (notification,) = _delivered_to(setup.apns, token)
    assert notification.headers["apns-priority"] == "10"
    expires_in = int(notification.headers["apns-expiration"]) - time.time()
    assert 590 <= expires_in <= 600


async def test_low_priority_push_may_wait_for_the_device(setup: Setup) -> None:
    _, token, notification_id = await _notify(setup.api, priority="low")

    await setup.api.settled(notification_id)

    (notification,) = _delivered_to(setup.apns, token)
    assert notification.headers["apns-priority"] == "5"


async def test_retries_carry_the_same_apns_id(setup: Setup) -> None:
    setup.apns.fail_next("InternalServerError")

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    first, second = _received_by(setup.apns, token)
    assert first.headers["apns-id"] == second.headers["apns-id"]


async def test_too_many_requests_is_retried_no_sooner_than_retry_after(setup: Setup) -> None:
    setup.apns.fail_next("TooManyRequests", retry_after=1)

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    first, second = _received_by(setup.apns, token)
    assert second.at - first.at >= 1.0


@pytest.mark.parametrize(
    "reason", ["Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"]
)
async def test_dead_device_fails_and_is_forgotten(setup: Setup, reason: str) -> None:
    setup.apns.fail_next(reason)

    user_id, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert push["attempts"] == 1
    assert reason in push["reason"]
    assert await eventually_forgotten(setup.api, user_id, token)


async def test_payload_too_large_fails_and_keeps_the_device(setup: Setup) -> None:
    setup.apns.fail_next("PayloadTooLarge")

    user_id, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert "PayloadTooLarge" in push["reason"]
    assert token in await device_tokens(setup.api, user_id)


async def test_expired_provider_token_is_replaced_and_the_send_goes_through(
    setup: Setup,
) -> None:
    setup.apns.expire_provider_tokens()

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 1
    refused, accepted = _received_by(setup.apns, token)
    assert refused.headers["authorization"] != accepted.headers["authorization"]


async def test_a_send_that_hangs_past_the_timeout_is_retried(setup: Setup) -> None:
    setup.apns.hang_next(2.0)

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "sent"
    assert push["attempts"] == 2
    assert len(_delivered_to(setup.apns, token)) == 1


async def test_secrets_appear_in_no_log_and_no_reason(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    # The level an operator runs at; below it, libraries (hpack, aiosqlite) log raw headers
    # and query parameters themselves.
    caplog.set_level(logging.INFO)
    setup.apns.fail_next("InvalidProviderToken", times=6)

    _, token, notification_id = await _notify(setup.api)

    (push,) = (await setup.api.settled(notification_id))["deliveries"]
    assert push["status"] == "failed"
    assert "InvalidProviderToken" in push["reason"]
    shown = await everything_shown(setup.api, notification_id, push, caplog.text)
    assert setup.private_key_pem.splitlines()[1] not in shown
    for notification in _received_by(setup.apns, token):
        assert notification.headers["authorization"].removeprefix("bearer ") not in shown
