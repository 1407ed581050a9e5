"""Email through Amazon SES v2, and SES events arriving through SNS, against local fakes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes.ses import SesFake, SnsTopic
from tests.providers.support import eventually_status, suppressed
from tests.support.client import Api, unique
from tests.support.instance import instance_of_its_own, providers_environment

SENDER = "Boutique Café <noreply@shop.example>"
WELCOME = {
    "channels": {"email": {"subject": "Bienvenue {{ user.name }}", "html": "<p>Bonjour</p>"}}
}


def ses_table(fake: SesFake, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "ses",
        "type": "ses",
        "region": fake.region,
        "access_key_id": fake.access_key_id,
        "secret_access_key": fake.secret_access_key,
        "session_token": fake.session_token,
        "from": SENDER,
        "base_url": fake.base_url,
        "configuration_set": "transactional",
        **overrides,
    }


@dataclass
class Ses:
    api: Api
    fake: SesFake
    topic: SnsTopic

    async def send_welcome(self) -> tuple[str, str]:
        address = f"{unique('ana')}@example.com"
        user_id = await self.api.put_user(email=address, name="Ana")
        template_id = await self.api.put_template(WELCOME)
        response = await self.api.send(user_id=user_id, template=template_id)
        assert response.status_code == 202, response.text
        return response.json()["id"], address

    async def delivery(self, notification_id: str) -> dict[str, Any]:
        (email,) = (await self.api.settled(notification_id))["deliveries"]
        return dict(email)

    async def post_to_inbound(self, envelope: dict[str, str]) -> httpx.Response:
        # SNS posts its JSON as text/plain, with its own headers and no API key.
        async with httpx.AsyncClient(base_url=self.api.http.base_url) as sns:
            return await sns.post(
                "/v1/inbound/ses",
                content=json.dumps(envelope),
                headers={
                    "content-type": "text/plain; charset=UTF-8",
                    "x-amz-sns-message-type": envelope["Type"],
                    "x-amz-sns-topic-arn": envelope["TopicArn"],
                },
            )

    async def suppressed(self) -> list[str]:
        return await suppressed(self.api, "email")


@pytest.fixture(scope="module")
async def ses(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ses]:
    directory = tmp_path_factory.mktemp("ses")
    topic = SnsTopic()
    certificate = directory / "sns.pem"
    certificate.write_bytes(topic.certificate_pem)
    # Temporary credentials (an assumed role): the session token must be signed too.
    async with SesFake(session_token="FwoGZXIvYXdzEXAMPLE-session-token").serving() as fake:
        table = ses_table(fake, sns_certificate_file=str(certificate), sns_topic_arn=topic.arn)
        async with instance_of_its_own(
            "sqlite", directory, environment=providers_environment("email", table)
        ) as (api, _):
            yield Ses(api, fake, topic)


def bounce(address: str, message_id: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    """An SES event-publishing Bounce event, as the SES developer guide shows it."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1"}],
            "timestamp": "2026-11-24T20:00:00.000Z",
            "feedbackId": "0102018c-feedback-000000",
        },
        "mail": {"messageId": message_id, "destination": [address]},
    }


async def test_email_is_sent_as_raw_mime_with_a_valid_signature(ses: Ses) -> None:
    notification_id, address = await ses.send_welcome()

    email = await ses.delivery(notification_id)

    assert email["status"] == "sent"
    assert email["provider"] == "ses"
    (sent,) = ses.fake.for_address(address)
    assert email["provider_message_id"] == sent.message_id
    assert sent.request["FromEmailAddress"] == "noreply@shop.example"
    assert sent.request["ConfigurationSetName"] == "transactional"
    assert sent.message["Subject"] == "Bienvenue Ana"
    assert sent.message["Message-ID"] == f"<{email['id']}@shop.example>"
    assert sent.message.get_content_type() == "multipart/alternative"


async def test_throttled_send_waits_the_retry_after_ses_asked(ses: Ses) -> None:
    ses.fake.fail_next(
        429, "TooManyRequestsException", "Maximum sending rate exceeded.", retry_after=1
    )

    notification_id, address = await ses.send_welcome()

    email = await ses.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    throttled_at, sent_at = ses.fake.attempts[-2:]
    assert sent_at - throttled_at >= 1.0
    assert ses.fake.for_address(address)


async def test_rejected_message_fails_with_the_ses_code_and_keeps_the_address(ses: Ses) -> None:
    ses.fake.fail_next(400, "MessageRejected", "Email address is not verified: someone@example.com")

    notification_id, address = await ses.send_welcome()

    email = await ses.delivery(notification_id)
    assert email["status"] == "failed"
    assert email["attempts"] == 1
    assert "MessageRejected" in email["reason"]
    assert "@" not in email["reason"]
    assert address not in await ses.suppressed()


async def test_paused_account_fails_the_delivery_as_not_the_recipients_fault(ses: Ses) -> None:
    ses.fake.fail_next(400, "SendingPausedException", "Sending is paused for this account.")

    notification_id, address = await ses.send_welcome()

    email = await ses.delivery(notification_id)
    assert email["status"] == "failed"
    assert "SendingPausedException" in email["last_error"]
    assert address not in await ses.suppressed()


async def test_server_error_is_retried(ses: Ses) -> None:
    ses.fake.fail_next(500, "InternalFailure", "Internal server error")

    notification_id, address = await ses.send_welcome()

    email = await ses.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    assert len(ses.fake.for_address(address)) == 1


async def test_send_that_times_out_is_retried(ses: Ses) -> None:
    ses.fake.hang_next(2.0)  # the channel's timeout is 1 s

    notification_id, _ = await ses.send_welcome()

    email = await ses.delivery(notification_id)
    assert email["status"] == "sent"
    assert email["attempts"] == 2


async def test_signed_permanent_bounce_suppresses_the_address_and_fails_the_delivery(
    ses: Ses,
) -> None:
    notification_id, address = await ses.send_welcome()
    sent = await ses.delivery(notification_id)

    response = await ses.post_to_inbound(
        ses.topic.notification(bounce(address, sent["provider_message_id"]))
    )

    assert response.status_code == 200, response.text
    assert address in await ses.suppressed()
    email = await ses.delivery(notification_id)
    assert email["status"] == "failed"


async def test_signature_version_1_is_accepted(ses: Ses) -> None:
    address = f"{unique('old')}@example.com"

    response = await ses.post_to_inbound(
        ses.topic.notification(bounce(address, "0102-unknown"), signature_version="1")
    )

    assert response.status_code == 200, response.text
    assert address in await ses.suppressed()


async def test_transient_bounce_does_not_suppress(ses: Ses) -> None:
    address = f"{unique('full')}@example.com"

    response = await ses.post_to_inbound(
        ses.topic.notification(bounce(address, "0102-unknown", bounce_type="Transient"))
    )

    assert response.status_code == 200
    assert address not in await ses.suppressed()


async def test_complaint_suppresses_the_address(ses: Ses) -> None:
    address = f"{unique('angry')}@example.com"
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-11-24T20:00:00.000Z",
            "feedbackId": "0102018c-complaint-000000",
        },
        "mail": {"messageId": "0102-unknown", "destination": [address]},
    }

    response = await ses.post_to_inbound(ses.topic.notification(complaint))

    assert response.status_code == 200
    assert address in await ses.suppressed()


async def test_delivery_event_marks_the_delivery_delivered(ses: Ses) -> None:
    notification_id, address = await ses.send_welcome()
    sent = await ses.delivery(notification_id)
    delivery = {
        "eventType": "Delivery",
        "delivery": {"recipients": [address], "smtpResponse": "250 2.6.0 Message received"},
        "mail": {"messageId": sent["provider_message_id"], "destination": [address]},
    }

    response = await ses.post_to_inbound(ses.topic.notification(delivery))

    assert response.status_code == 200
    await eventually_status(ses.api, notification_id, "delivered")


async def test_badly_signed_bounce_is_refused_and_changes_nothing(ses: Ses) -> None:
    address = f"{unique('forged')}@example.com"
    forged = {**ses.topic.notification(bounce(address, "0102-unknown"))}
    forged["Message"] = forged["Message"].replace("Permanent", "Permanent ")

    response = await ses.post_to_inbound(forged)

    assert response.status_code == 403
    assert address not in await ses.suppressed()


async def test_notification_from_another_topic_is_refused(ses: Ses) -> None:
    address = f"{unique('other')}@example.com"
    stranger = SnsTopic(arn="arn:aws:sns:eu-west-1:999999999999:someone-else")

    response = await ses.post_to_inbound(stranger.notification(bounce(address, "0102-unknown")))

    assert response.status_code == 403
    assert address not in await ses.suppressed()


async def test_subscription_confirmation_is_acknowledged_without_fetching(ses: Ses) -> None:
    response = await ses.post_to_inbound(ses.topic.subscription_confirmation())

    assert response.status_code == 200


async def test_wrong_secret_key_fails_over_nothing_and_never_shows_the_key(
    ses: Ses, tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong_secret = "not-the-secret-key-never-shown"
    table = ses_table(ses.fake, secret_access_key=wrong_secret)
    environment = providers_environment("email", table)
    async with instance_of_its_own(
        "sqlite", tmp_path_factory.mktemp("ses-wrong"), environment=environment
    ) as (api, _):
        other = Ses(api, ses.fake, ses.topic)
        notification_id, _ = await other.send_welcome()
        email = await other.delivery(notification_id)
        audit = await api.http.get(f"/v1/notifications/{notification_id}/audit")

    assert email["status"] == "dead"
    assert "InvalidSignatureException" in email["last_error"]
    for shown in (str(email), audit.text, caplog.text):
        assert wrong_secret not in shown
        assert ses.fake.secret_access_key not in shown
        assert str(ses.fake.session_token) not in shown
