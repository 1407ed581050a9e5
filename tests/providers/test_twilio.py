"""SMS through Twilio: sends, Twilio's refusals, and its callbacks (STOP/START/HELP, status).

A real frontdesk instance sends to a fake Twilio API on a loopback port; callbacks are signed
as Twilio signs them and posted to frontdesk's public inbound endpoints.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontdesk.bootstrap import Frontdesk
from tests.fakes.twilio import ReceivedRequest, TwilioFake, signed_callback
from tests.providers.support import CRITICAL_FOR_TEN_MINUTES, eventually_status, suppressed
from tests.support.client import Api, eventually
from tests.support.instance import instance_of_its_own, providers_environment

ACCOUNT_SID = "AC" + "5ef8" * 8
AUTH_TOKEN = "twilio-auth-token-9c1d4e7a0b3f6a2d"
SENDER = "+15005550006"
HELP_TEXT = "Shop alerts: reply STOP to stop. Help: shop.example/help"
SHIPPED = {"channels": {"sms": {"text": "Order {{ payload.order_id }} has shipped"}}}

# Valid US numbers, one per test so that no test sees another's sends.
_numbers = (f"+1415555{n:04d}" for n in itertools.count(100))


def twilio_table(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "twilio",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from": SENDER,
        "base_url": base_url,
        "help_text": HELP_TEXT,
        **overrides,
    }


@dataclass
class Twilio:
    api: Api
    fake: TwilioFake
    instance: Frontdesk
    template: str

    async def user(self) -> tuple[str, str]:
        phone = next(_numbers)
        return await self.api.put_user(phone=phone, name="Ada"), phone

    async def notify(self, user_id: str, order_id: str = "A-1", **options: Any) -> str:
        response = await self.api.send(
            user_id=user_id, template=self.template, payload={"order_id": order_id}, **options
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def sent(self) -> tuple[str, str, ReceivedRequest]:
        """A new user's notification, once Twilio has taken its SMS: (its id, the user's
        phone, what Twilio received)."""
        user_id, phone = await self.user()
        notification_id = await self.notify(user_id)
        await self.api.settled(notification_id)
        (sent,) = self.fake.to(phone)
        return notification_id, phone, sent

    async def send_sms(self, user_id: str, order_id: str = "A-1") -> dict[str, Any]:
        """The SMS delivery of a new notification, once settled."""
        (delivery,) = (await self.api.settled(await self.notify(user_id, order_id)))["deliveries"]
        return delivery

    def callback_url(self, path: str) -> str:
        return f"{self.instance.settings.server.public_url}/v1/inbound/{path}"

    async def callback(
        self, path: str, params: dict[str, str], auth_token: str = AUTH_TOKEN
    ) -> httpx.Response:
        """Post ``params`` to frontdesk as Twilio would: no API key, signed with the token."""
        headers = signed_callback(auth_token, self.callback_url(path), params)
        async with httpx.AsyncClient(base_url=str(self.api.http.base_url)) as twilio:
            return await twilio.post(f"/v1/inbound/{path}", data=params, headers=headers)

    async def status_callback(
        self,
        message_sid: str,
        phone: str,
        status: str,
        error_code: str | None = None,
        auth_token: str = AUTH_TOKEN,
    ) -> httpx.Response:
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": SENDER,
            "MessageSid": message_sid,
            "MessageStatus": status,
            "SmsSid": message_sid,
            "SmsStatus": status,
            "To": phone,
        }
        if error_code is not None:
            params["ErrorCode"] = error_code
        return await self.callback("twilio/status", params, auth_token)

    async def reply(self, phone: str, body: str, auth_token: str = AUTH_TOKEN) -> httpx.Response:
        return await self.callback(
            "twilio/sms",
            {
                "AccountSid": ACCOUNT_SID,
                "ApiVersion": "2010-04-01",
                "Body": body,
                "From": phone,
                "MessageSid": "SM" + "a1b2" * 8,
                "NumMedia": "0",
                "To": SENDER,
            },
            auth_token,
        )


@pytest.fixture(scope="module")
async def twilio(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Twilio]:
    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN)
    async with fake.serving():
        environment = providers_environment("sms", twilio_table(fake.base_url))
        directory = tmp_path_factory.mktemp("twilio")
        async with instance_of_its_own("sqlite", directory, environment=environment) as (
            api,
            instance,
        ):
            yield Twilio(api, fake, instance, await api.put_template(SHIPPED))


async def test_sms_goes_out_as_a_twilio_message(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()

    delivery = await twilio.send_sms(user_id, order_id="A-17")

    assert delivery["status"] == "sent"
    assert delivery["provider"] == "twilio"
    (sent,) = twilio.fake.to(phone)
    assert sent.status == 201
    assert sent.form["From"] == SENDER
    assert sent.form["Body"] == "Order A-17 has shipped"
    assert "ValidityPeriod" not in sent.form


async def test_an_expiring_sms_is_valid_at_twilio_no_longer_than_the_notification(
    twilio: Twilio,
) -> None:
    user_id, phone = await twilio.user()

    notification_id = await twilio.notify(user_id, **CRITICAL_FOR_TEN_MINUTES)

    await twilio.api.settled(notification_id)
    (sent,) = twilio.fake.to(phone)
    assert 590 <= int(sent.form["ValidityPeriod"]) <= 600
    assert sent.form["StatusCallback"] == twilio.callback_url("twilio/status")


async def test_twilio_message_sid_is_recorded_on_the_delivery(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()

    delivery = await twilio.send_sms(user_id)

    (sent,) = twilio.fake.to(phone)
    assert sent.sid is not None and sent.sid.startswith("SM")
    assert delivery.get("provider_message_id") == sent.sid


async def test_segments_and_encoding_are_recorded_on_the_delivery(twilio: Twilio) -> None:
    user_id, _ = await twilio.user()

    delivery = await twilio.send_sms(user_id, order_id="€" * 80)  # 20 + 160 septets

    assert delivery["status"] == "sent"
    details = delivery.get("details") or {}
    assert (details.get("segments"), details.get("encoding")) == (2, "GSM-7")


async def test_throttled_send_waits_the_retry_after_twilio_asked(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    twilio.fake.fail(phone, code=20429, status=429, message="Too Many Requests", retry_after=1)

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 2
    throttled, sent = twilio.fake.to(phone)
    assert (throttled.status, sent.status) == (429, 201)
    assert sent.at - throttled.at >= 1.0


async def test_unsubscribed_recipient_fails_and_is_suppressed(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    twilio.fake.fail(
        phone, code=21610, status=400, message="Attempt to send to unsubscribed recipient"
    )

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 1
    assert "21610" in delivery["reason"]
    assert phone not in delivery["reason"]
    assert phone in await suppressed(twilio.api, "sms")


async def test_invalid_to_number_fails_and_is_suppressed(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    # Twilio's own message for 21211 quotes the number: it must not reach the reason.
    twilio.fake.fail(
        phone,
        code=21211,
        status=400,
        message=f"The 'To' number {phone} is not a valid phone number.",
    )

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "failed"
    assert "21211" in delivery["reason"]
    assert phone not in delivery["reason"] and phone not in (delivery["last_error"] or "")
    assert phone in await suppressed(twilio.api, "sms")


async def test_refusal_about_the_sender_fails_without_suppressing_the_number(
    twilio: Twilio,
) -> None:
    user_id, phone = await twilio.user()
    message = "The 'From' number is not a valid message-capable Twilio phone number"
    twilio.fake.fail(phone, code=21606, status=400, message=message)

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "failed"
    assert "21606" in delivery["reason"]
    assert phone not in await suppressed(twilio.api, "sms")


async def test_send_that_times_out_is_retried(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    twilio.fake.hang(phone)

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 2
    assert [r.status for r in twilio.fake.to(phone)] == [0, 201]


async def test_twilio_server_error_is_retried(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    twilio.fake.fail(phone, code=20500, status=500, message="Internal Server Error")

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "sent"
    assert [r.status for r in twilio.fake.to(phone)] == [500, 201]


async def test_invalid_number_never_reaches_twilio(twilio: Twilio) -> None:
    # The API refuses such a number; one stored by an older version or an import still may be.
    user_id = "user-legacy-phone"
    await twilio.instance.store.put_user(user_id, {"phone": "+1415555"})

    delivery = await twilio.send_sms(user_id)

    assert delivery["status"] == "failed"
    assert "invalid_number" in delivery["reason"]
    assert twilio.fake.to("+1415555") == []


async def test_stop_reply_opts_the_number_out_of_sms(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()

    response = await twilio.reply(phone, "  Stop ")

    assert response.status_code == 200
    delivery = await twilio.send_sms(user_id)
    assert delivery["status"] == "skipped"
    assert twilio.fake.to(phone) == []


async def test_start_reply_opts_the_number_back_in(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()
    assert (await twilio.reply(phone, "STOP")).status_code == 200

    response = await twilio.reply(phone, "start")

    assert response.status_code == 200
    delivery = await twilio.send_sms(user_id)
    assert delivery["status"] == "sent"


async def test_help_reply_is_answered_with_twiml(twilio: Twilio) -> None:
    _, phone = await twilio.user()

    response = await twilio.reply(phone, "help")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Response><Message>" in response.text
    assert "reply STOP to stop" in response.text


async def test_other_replies_get_an_empty_twiml_response(twilio: Twilio) -> None:
    _, phone = await twilio.user()

    response = await twilio.reply(phone, "Thanks, got it")

    assert response.status_code == 200
    assert "<Message>" not in response.text
    assert "<Response" in response.text


async def test_badly_signed_stop_is_refused_and_changes_nothing(twilio: Twilio) -> None:
    user_id, phone = await twilio.user()

    response = await twilio.reply(phone, "STOP", auth_token="not-the-auth-token")

    assert response.status_code == 403
    delivery = await twilio.send_sms(user_id)
    assert delivery["status"] == "sent"


async def test_delivered_status_callback_marks_the_delivery_delivered(twilio: Twilio) -> None:
    notification_id, phone, sent = await twilio.sent()

    response = await twilio.status_callback(sent.sid or "", phone, "delivered")

    assert response.status_code == 200
    delivery = await eventually_status(twilio.api, notification_id, "delivered")
    assert delivery["provider_message_id"] == sent.sid


async def test_undelivered_status_callback_fails_the_delivery_with_twilio_code(
    twilio: Twilio,
) -> None:
    notification_id, phone, sent = await twilio.sent()

    response = await twilio.status_callback(sent.sid or "", phone, "undelivered", "30003")

    assert response.status_code == 200
    delivery = await eventually_status(twilio.api, notification_id, "failed")
    assert "30003" in delivery["reason"]


async def test_a_failure_callback_for_a_dead_number_suppresses_it(twilio: Twilio) -> None:
    notification_id, phone, sent = await twilio.sent()

    response = await twilio.status_callback(sent.sid or "", phone, "undelivered", "30005")

    assert response.status_code == 200
    await eventually_status(twilio.api, notification_id, "failed")
    await _eventually_suppressed(twilio.api, phone)


async def test_a_failure_callback_for_a_passing_problem_keeps_the_number(
    twilio: Twilio,
) -> None:
    notification_id, phone, sent = await twilio.sent()

    await twilio.status_callback(sent.sid or "", phone, "undelivered", "30003")

    await eventually_status(twilio.api, notification_id, "failed")
    assert phone not in await suppressed(twilio.api, "sms")


async def test_sent_status_callback_changes_nothing(twilio: Twilio) -> None:
    notification_id, phone, sent = await twilio.sent()

    response = await twilio.status_callback(sent.sid or "", phone, "sent")

    assert response.status_code == 200
    (delivery,) = (await twilio.api.notification(notification_id))["deliveries"]
    assert delivery["status"] == "sent"


async def test_badly_signed_status_callback_is_refused(twilio: Twilio) -> None:
    notification_id, phone, sent = await twilio.sent()

    response = await twilio.status_callback(
        sent.sid or "", phone, "delivered", auth_token="not-the-auth-token"
    )

    assert response.status_code == 403
    (delivery,) = (await twilio.api.notification(notification_id))["deliveries"]
    assert delivery["status"] == "sent"


async def test_messaging_service_and_api_key_send_without_a_from_number(tmp_path: Path) -> None:
    api_key_sid, api_key_secret = "SK" + "0d9e" * 8, "twilio-api-key-secret-55aa"
    service_sid = "MG" + "3b7f" * 8
    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN, api_keys={api_key_sid: api_key_secret})
    async with fake.serving():
        table = twilio_table(
            fake.base_url,
            api_key_sid=api_key_sid,
            api_key_secret=api_key_secret,
            messaging_service_sid=service_sid,
        )
        del table["from"]

        delivery, phone = await _sms_through_an_instance_of_its_own(table, tmp_path)

    assert delivery["status"] == "sent"
    (sent,) = fake.to(phone)
    assert sent.form["MessagingServiceSid"] == service_sid
    assert "From" not in sent.form


async def test_wrong_credentials_fail_as_a_configuration_problem_without_leaking_them(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN)
    wrong_token = "twilio-wrong-token-7f00d1e5c0ffee00"
    async with fake.serving():
        table = twilio_table(fake.base_url, auth_token=wrong_token)

        delivery, _ = await _sms_through_an_instance_of_its_own(table, tmp_path)

    assert delivery["status"] == "failed"
    assert "20003" in delivery["reason"]
    assert "configuration" in delivery["reason"]
    assert fake.requests[0].status == 401
    written = capfd.readouterr()
    for secret in (wrong_token, AUTH_TOKEN):
        assert secret not in delivery["reason"] + (delivery["last_error"] or "")
        assert secret not in written.out + written.err


async def _sms_through_an_instance_of_its_own(
    twilio_provider: dict[str, Any], directory: Path
) -> tuple[dict[str, Any], str]:
    """A notification to a new user, sent by an instance with this Twilio provider alone:
    (its SMS delivery once settled, the user's phone)."""
    environment = providers_environment("sms", twilio_provider)
    async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
        phone = next(_numbers)
        user_id = await api.put_user(phone=phone)
        template = await api.put_template(SHIPPED)
        response = await api.send(user_id=user_id, template=template, payload={"order_id": 1})
        (delivery,) = (await api.settled(response.json()["id"]))["deliveries"]
    return delivery, phone


async def _eventually_suppressed(api: Api, phone: str) -> None:
    async def is_suppressed() -> bool:
        return phone in await suppressed(api, "sms")

    await eventually(is_suppressed, timeout=3)
