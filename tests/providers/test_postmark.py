"""Email through Postmark, and Postmark's webhooks, against a local fake of its API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes.postmark import PostmarkFake
from tests.providers.support import eventually_status, suppressed
from tests.support.client import Api, unique
from tests.support.instance import instance_of_its_own, providers_environment

SENDER = "Boutique <noreply@shop.example>"
WEBHOOK_USER = "postmark"
WEBHOOK_PASSWORD = "webhook-password-s3cret"
RECEIPT = {
    "channels": {
        "email": {
            "subject": "Reçu {{ payload.order_id }}",
            "html": "<p>Merci {{ user.name }}</p>",
            "text": "Merci {{ user.name }}",
        }
    }
}


def postmark_table(fake: PostmarkFake, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "postmark",
        "type": "postmark",
        "server_token": fake.server_token,
        "from": SENDER,
        "base_url": fake.base_url,
        "message_stream": "transactional",
        "webhook_username": WEBHOOK_USER,
        "webhook_password": WEBHOOK_PASSWORD,
        **overrides,
    }


@dataclass
class Postmark:
    api: Api
    fake: PostmarkFake

    async def send_receipt(self) -> tuple[str, str]:
        address = f"{unique('lea')}@example.com"
        user_id = await self.api.put_user(email=address, name="Léa")
        template_id = await self.api.put_template(RECEIPT)
        response = await self.api.send(
            user_id=user_id, template=template_id, payload={"order_id": "B-2"}
        )
        assert response.status_code == 202, response.text
        return response.json()["id"], address

    async def delivery(self, notification_id: str) -> dict[str, Any]:
        (email,) = (await self.api.settled(notification_id))["deliveries"]
        return dict(email)

    async def webhook(
        self, record: dict[str, Any], password: str = WEBHOOK_PASSWORD
    ) -> httpx.Response:
        authorization = self.fake.webhook_authorization(WEBHOOK_USER, password)
        async with httpx.AsyncClient(base_url=self.api.http.base_url) as postmark:
            return await postmark.post(
                "/v1/inbound/postmark", json=record, headers={"authorization": authorization}
            )

    async def suppressed(self) -> list[str]:
        return await suppressed(self.api, "email")


@pytest.fixture(scope="module")
async def postmark(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Postmark]:
    async with (
        PostmarkFake().serving() as fake,
        instance_of_its_own(
            "sqlite",
            tmp_path_factory.mktemp("postmark"),
            environment=providers_environment("email", postmark_table(fake)),
        ) as (api, _),
    ):
        yield Postmark(api, fake)


def hard_bounce(address: str, message_id: str) -> dict[str, Any]:
    """A bounce webhook as Postmark's webhook reference shows it."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "transactional",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": message_id,
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "noreply@shop.example",
        "BouncedAt": "2026-11-24T16:33:54.9070259Z",
        "Inactive": True,
        "CanActivate": True,
        "Metadata": {},
    }


async def test_email_is_sent_with_the_token_and_postmark_message_id_recorded(
    postmark: Postmark,
) -> None:
    notification_id, address = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)

    assert email["status"] == "sent"
    assert email["provider"] == "postmark"
    (sent,) = postmark.fake.to(address)
    assert email["provider_message_id"] == sent.message_id
    assert sent.body["From"] == SENDER
    assert sent.body["Subject"] == "Reçu B-2"
    assert sent.body["HtmlBody"] == "<p>Merci Léa</p>"
    assert sent.body["TextBody"] == "Merci Léa"
    assert sent.body["MessageStream"] == "transactional"
    assert sent.body["Metadata"] == {"delivery_id": email["id"]}


async def test_throttled_send_waits_the_retry_after_postmark_asked(postmark: Postmark) -> None:
    postmark.fake.fail_next(429, 429, "Rate limit exceeded.", retry_after=1)

    notification_id, address = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    throttled_at, sent_at = postmark.fake.attempts[-2:]
    assert sent_at - throttled_at >= 1.0
    assert postmark.fake.to(address)


async def test_inactive_recipient_fails_and_is_suppressed(postmark: Postmark) -> None:
    postmark.fake.fail_next(
        422,
        406,
        "You tried to send to recipient(s) that have been marked as inactive. "
        "Found inactive addresses: someone@example.com.",
    )

    notification_id, address = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)
    assert email["status"] == "failed"
    assert email["attempts"] == 1
    assert "406" in email["reason"]
    assert "@" not in email["last_error"]
    assert address in await postmark.suppressed()


async def test_invalid_email_request_fails_without_suppressing(postmark: Postmark) -> None:
    postmark.fake.fail_next(422, 300, "Invalid 'From' address.")

    notification_id, address = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)
    assert email["status"] == "failed"
    assert "300" in email["reason"]
    assert address not in await postmark.suppressed()


async def test_server_error_is_retried(postmark: Postmark) -> None:
    postmark.fake.fail_next(503, 100, "Maintenance")

    notification_id, address = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    assert len(postmark.fake.to(address)) == 1


async def test_send_that_times_out_is_retried(postmark: Postmark) -> None:
    postmark.fake.hang_next(2.0)  # the channel's timeout is 1 s

    notification_id, _ = await postmark.send_receipt()

    email = await postmark.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2


async def test_hard_bounce_webhook_suppresses_the_address_and_fails_the_delivery(
    postmark: Postmark,
) -> None:
    notification_id, address = await postmark.send_receipt()
    sent = await postmark.delivery(notification_id)

    response = await postmark.webhook(hard_bounce(address, sent["provider_message_id"]))

    assert response.status_code == 200, response.text
    assert address in await postmark.suppressed()
    assert (await postmark.delivery(notification_id))["status"] == "failed"


async def test_soft_bounce_webhook_does_not_suppress(postmark: Postmark) -> None:
    address = f"{unique('full')}@example.com"
    soft = {
        **hard_bounce(address, "unknown"),
        "Type": "SoftBounce",
        "TypeCode": 4096,
        "Inactive": False,
    }

    response = await postmark.webhook(soft)

    assert response.status_code == 200
    assert address not in await postmark.suppressed()


async def test_spam_complaint_webhook_suppresses_the_address(postmark: Postmark) -> None:
    address = f"{unique('spam')}@example.com"
    complaint = {
        **hard_bounce(address, "unknown"),
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "TypeCode": 512,
    }

    response = await postmark.webhook(complaint)

    assert response.status_code == 200
    assert address in await postmark.suppressed()


async def test_delivery_webhook_marks_the_delivery_delivered(postmark: Postmark) -> None:
    notification_id, address = await postmark.send_receipt()
    sent = await postmark.delivery(notification_id)
    delivered = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "transactional",
        "MessageID": sent["provider_message_id"],
        "Recipient": address,
        "DeliveredAt": "2026-11-24T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"delivery_id": sent["id"]},
    }

    response = await postmark.webhook(delivered)

    assert response.status_code == 200
    await eventually_status(postmark.api, notification_id, "delivered")


async def test_webhook_with_wrong_credentials_is_refused_and_changes_nothing(
    postmark: Postmark,
) -> None:
    address = f"{unique('forged')}@example.com"

    response = await postmark.webhook(hard_bounce(address, "unknown"), password="guess")

    assert response.status_code == 403
    assert address not in await postmark.suppressed()


async def test_wrong_server_token_never_shows_the_token(
    postmark: Postmark,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    wrong_token = "wrong-server-token-never-shown"
    environment = providers_environment(
        "email", postmark_table(postmark.fake, server_token=wrong_token)
    )
    async with instance_of_its_own(
        "sqlite", tmp_path_factory.mktemp("postmark-wrong"), environment=environment
    ) as (api, _):
        misconfigured = Postmark(api, postmark.fake)
        notification_id, _ = await misconfigured.send_receipt()
        email = await misconfigured.delivery(notification_id)
        audit = await api.http.get(f"/v1/notifications/{notification_id}/audit")

    assert email["status"] == "dead"
    assert "ErrorCode 10" in email["last_error"]
    for shown in (str(email), audit.text, caplog.text):
        assert wrong_token not in shown
        assert postmark.fake.server_token not in shown
        assert WEBHOOK_PASSWORD not in shown
