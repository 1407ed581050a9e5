"""A full run of ``frontdesk serve`` with every provider configured, logging at debug, leaves
no configured secret in its log: sends on every channel, failovers, provider errors, inbound
callbacks (well and badly signed) and webhooks all happen, then the log is searched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes import apns as fake_apns
from tests.fakes import fcm as fake_fcm
from tests.fakes import webpush as fake_webpush
from tests.fakes.apns import FakeApns
from tests.fakes.postmark import PostmarkFake
from tests.fakes.ses import SesFake, SnsTopic
from tests.fakes.smtp import fake_smtp_server
from tests.fakes.twilio import TwilioFake, signed_callback
from tests.fakes.webpush import FakePushService
from tests.providers.support import fcm_service_account, pem
from tests.support.client import Api, eventually
from tests.support.databases import sqlite_url
from tests.support.instance import ADMIN_KEY, toml_inline
from tests.support.process import ServerProcess
from tests.support.serving import serving
from tests.support.webhook_receiver import Receiver

# Every secret, by the environment variable the configuration names it through.
SECRETS = {
    "SMTP_PASSWORD": "smtp-password-4f9a1c",
    "SES_SECRET": "ses-secret-access-key-7d3e2b",
    "SES_SESSION_TOKEN": "ses-session-token-51c0aa",
    "POSTMARK_TOKEN": "postmark-server-token-9e8d7c",
    "POSTMARK_WEBHOOK_PASSWORD": "postmark-webhook-password-1a2b",
    "TWILIO_AUTH_TOKEN": "twilio-auth-token-c0ffee",
    "ENCRYPTION_KEY": "tVqCy6Rp7tnTT7sQ5QmN1y5gV9C1c7bq8Q3nY2lK0hI=",
}
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
PUBLIC_URL = "http://127.0.0.1:8080"
ORDER_SHIPPED = {
    "channels": {
        "email": {"subject": "Order {{ payload.order }}", "html": "<p>On its way</p>"},
        "sms": {"text": "Order {{ payload.order }} has shipped"},
        "push": {"title": "Order {{ payload.order }}", "body": "It has shipped"},
        "webhook": {"event_type": "order.shipped", "body": {"order": "{{ payload.order }}"}},
    }
}


@dataclass
class Fakes:
    ses: SesFake
    postmark: PostmarkFake
    twilio: TwilioFake
    topic: SnsTopic
    receiver: Receiver
    receiver_url: str
    apns: FakeApns
    push_service: FakePushService
    key_material: list[str]  # private keys' PEM, whose lines must not be logged either
    environment: dict[str, str]


@asynccontextmanager
async def every_provider(directory: Path) -> AsyncIterator[Fakes]:
    async with AsyncExitStack() as stack:
        smtp = await stack.enter_async_context(
            fake_smtp_server(directory, password=SECRETS["SMTP_PASSWORD"])
        )
        ses = await stack.enter_async_context(
            SesFake(
                secret_access_key=SECRETS["SES_SECRET"],
                session_token=SECRETS["SES_SESSION_TOKEN"],
            ).serving()
        )
        postmark = await stack.enter_async_context(
            PostmarkFake(SECRETS["POSTMARK_TOKEN"]).serving()
        )
        twilio = await stack.enter_async_context(
            TwilioFake(ACCOUNT_SID, SECRETS["TWILIO_AUTH_TOKEN"]).serving()
        )
        fcm, account_file, fcm_key = fcm_service_account(directory)
        await stack.enter_async_context(fake_fcm.serving(fcm))
        apns_key = ec.generate_private_key(ec.SECP256R1())
        apns_key_file = directory / "AuthKey_ABC123DEFG.p8"
        apns_key_file.write_text(pem(apns_key))
        apns = await stack.enter_async_context(
            fake_apns.serving(
                FakeApns("TEAM123456", "ABC123DEFG", apns_key.public_key(), "com.shop"), directory
            )
        )
        push_service = await stack.enter_async_context(
            fake_webpush.serving(FakePushService(), directory)
        )
        vapid_key = pem(ec.generate_private_key(ec.SECP256R1()))
        (directory / "vapid.pem").write_text(vapid_key)
        topic = SnsTopic()
        (directory / "sns.pem").write_bytes(topic.certificate_pem)
        receiver = Receiver()
        receiver_url = await stack.enter_async_context(serving(receiver.app()))
        stack.callback(receiver.release)
        email = [
            {
                "type": "ses",
                "region": ses.region,
                "access_key_id": ses.access_key_id,
                "secret_access_key": "${SES_SECRET}",
                "session_token": "${SES_SESSION_TOKEN}",
                "from": "Shop <noreply@shop.example>",
                "base_url": ses.base_url,
                "sns_certificate_file": str(directory / "sns.pem"),
                "sns_topic_arn": topic.arn,
            },
            {
                "type": "postmark",
                "server_token": "${POSTMARK_TOKEN}",
                "from": "Shop <noreply@shop.example>",
                "base_url": postmark.base_url,
                "webhook_username": "postmark",
                "webhook_password": "${POSTMARK_WEBHOOK_PASSWORD}",
            },
            {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "Shop <noreply@shop.example>",
                "username": smtp.username,
                "password": "${SMTP_PASSWORD}",
                "ca_file": str(smtp.ca_file),
            },
        ]
        sms = [
            {
                "type": "twilio",
                "account_sid": ACCOUNT_SID,
                "auth_token": "${TWILIO_AUTH_TOKEN}",
                "from": "+15005550006",
                "base_url": twilio.base_url,
            }
        ]
        push = [
            {
                "type": "fcm",
                "service_account_file": str(account_file),
                "base_url": fcm.url,
                "token_url": fcm.token_url,
            },
            {
                "type": "apns",
                "team_id": "TEAM123456",
                "key_id": "ABC123DEFG",
                "private_key_file": str(apns_key_file),
                "topic": "com.shop",
                "base_url": apns.url,
                "ca_file": str(apns.ca_file),
            },
            {
                "type": "webpush",
                "subject": "mailto:ops@shop.example",
                "vapid_private_key_file": str(directory / "vapid.pem"),
                "ca_file": str(push_service.ca_file),
            },
        ]
        environment = {
            **SECRETS,
            "FRONTDESK_LOG_LEVEL": "debug",
            "FRONTDESK_PUBLIC_URL": PUBLIC_URL,
            "FRONTDESK_PROVIDERS__EMAIL": toml_inline(email),
            "FRONTDESK_PROVIDERS__SMS": toml_inline(sms),
            "FRONTDESK_PROVIDERS__PUSH": toml_inline(push),
            "FRONTDESK_WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.1/32"]',
            "FRONTDESK_WEBHOOKS__ENCRYPTION_KEYS": '["${ENCRYPTION_KEY}"]',
            "FRONTDESK_CHANNELS__EMAIL__RETRY_BASE_SECONDS": "0.05",
        }
        yield Fakes(
            ses,
            postmark,
            twilio,
            topic,
            receiver,
            receiver_url,
            apns,
            push_service,
            [fcm_key, pem(apns_key), vapid_key],
            environment,
        )


async def _everything_happens(api: Api, fakes: Fakes) -> list[str]:
    """Sends on every channel (failing over, failing), inbound callbacks, webhooks; the
    secrets frontdesk itself made along the way (a webhook signing secret)."""
    template = await api.put_template(ORDER_SHIPPED)
    phone, stopped_phone = "+14155550123", "+14155550124"
    buyer = await api.put_user(email="ada@example.com", phone=phone, name="Ada")
    for token, provider in (
        ("fcm-token-ada", "fcm"),
        ("a" * 64, "apns"),
        (fakes.push_service.subscribe(), "webpush"),
    ):
        response = await api.http.post(
            f"/v1/users/{buyer}/devices", json={"token": token, "provider": provider}
        )
        assert response.status_code == 201, response.text
    endpoint = await api.http.post(
        f"/v1/users/{buyer}/webhook-endpoints",
        json={"url": fakes.receiver_url + "/hook", "headers": {"X-Api-Key": "customer-key-77"}},
    )
    assert endpoint.status_code == 201, endpoint.text
    other = await api.put_user(email="bob@example.com", phone=stopped_phone)

    async def outcome(user_id: str, order: str) -> dict[str, tuple[str, str]]:
        response = await api.send(user_id=user_id, template=template, payload={"order": order})
        assert response.status_code == 202, response.text
        found = await api.settled(response.json()["id"], timeout=30)
        return {d["channel"]: (d["status"], d["provider"]) for d in found["deliveries"]}

    outcomes = [await outcome(buyer, "1")]
    fakes.ses.fail_next(503, "ServiceUnavailable", "Service is unavailable")
    outcomes.append(await outcome(buyer, "2"))
    fakes.twilio.fail(stopped_phone, code=21610, status=400, message="unsubscribed recipient")
    outcomes.append(await outcome(other, "3"))
    assert outcomes[0] == {
        "email": ("sent", "ses"),
        "sms": ("sent", "twilio"),
        "push": ("sent", "apns+fcm+webpush"),
        "webhook": ("sent", "webhooks"),
    }
    assert outcomes[1]["email"] == ("sent", "postmark")  # SES answered 503: failover
    assert outcomes[2]["sms"] == ("failed", "twilio")  # 21610: the number is suppressed

    stop = {"From": phone, "To": "+15005550006", "Body": "STOP", "MessageSid": "SM" + "0" * 32}
    badly = await api.http.post(
        "/v1/inbound/twilio/sms",
        data=stop,
        headers=signed_callback("not-the-token", PUBLIC_URL + "/v1/inbound/twilio/sms", stop),
    )
    well = await api.http.post(
        "/v1/inbound/twilio/sms",
        data=stop,
        headers=signed_callback(
            SECRETS["TWILIO_AUTH_TOKEN"], PUBLIC_URL + "/v1/inbound/twilio/sms", stop
        ),
    )
    wrong_password = await api.http.post(
        "/v1/inbound/postmark",
        json={"RecordType": "Bounce", "Type": "HardBounce", "Email": "ada@example.com"},
        auth=("postmark", "guessed-password"),
    )
    assert (badly.status_code, well.status_code, wrong_password.status_code) == (403, 200, 403)
    await eventually(lambda: _arrived(fakes.receiver))
    return [endpoint.json()["secret"], "customer-key-77"]


async def _arrived(receiver: Receiver) -> bool:
    return len(receiver.received) >= 2


@pytest.mark.timeout(180)
async def test_a_full_run_logs_no_secret(tmp_path: Path) -> None:
    log_path = tmp_path / "frontdesk.log"
    async with every_provider(tmp_path) as fakes:
        server = ServerProcess(sqlite_url(tmp_path), fakes.environment, log_path=log_path)
        await asyncio.to_thread(server.start)
        try:
            async with server.client() as http:
                made = await _everything_happens(Api(http), fakes)
        finally:
            await asyncio.to_thread(server.stop)

    log = log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(lines) > 10, "the run should have logged"
    secrets: dict[str, Any] = {**SECRETS, "admin key": ADMIN_KEY, "webhook secret": made[0]}
    secrets["custom header"] = made[1]
    for name, secret in secrets.items():
        assert secret not in log, f"{name} is in the log"
    for key in fakes.key_material:
        for line in key.splitlines():
            if len(line) >= 40:
                assert line not in log, "a private key is in the log"
    print(f"\n{len(lines)} log lines searched for {len(secrets) + 3} secrets and keys: none found")
