"""Email through an SMTP server: a real aiosmtpd server requiring TLS (STARTTLS, or implicit TLS
from the first byte) and AUTH."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.smtp import FakeSmtpServer, fake_smtp_server
from tests.providers.support import suppressed
from tests.support.client import Api, unique
from tests.support.instance import free_port, instance_of_its_own, providers_environment

SENDER = "Boutique Café <noreply@shop.example>"
SUBJECT = "Votre commande {{ payload.order_id }} est expédiée ✓"
ORDER_SHIPPED = {
    "channels": {
        "email": {"subject": SUBJECT, "html": "<h1>Bonjour {{ user.name }}</h1><p>En route.</p>"}
    }
}


def smtp_table(fake: FakeSmtpServer, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "relay",
        "type": "smtp",
        "host": "127.0.0.1",
        "port": fake.port,
        "from": SENDER,
        "username": fake.username,
        "password": fake.password,
        "tls": "starttls",
        "ca_file": str(fake.ca_file),
        "helo_name": "frontdesk.test",
        **overrides,
    }


@pytest.fixture(scope="module")
async def smtp(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Api, FakeSmtpServer]]:
    directory = tmp_path_factory.mktemp("smtp")
    async with (
        fake_smtp_server(directory) as fake,
        instance_of_its_own(
            "sqlite", directory, environment=providers_environment("email", smtp_table(fake))
        ) as (api, _),
    ):
        yield api, fake


@pytest.fixture(scope="module")
async def smtp_over_implicit_tls(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Api, FakeSmtpServer]]:
    directory = tmp_path_factory.mktemp("smtps")
    async with (
        fake_smtp_server(directory, implicit_tls=True) as fake,
        instance_of_its_own(
            "sqlite",
            directory,
            environment=providers_environment("email", smtp_table(fake, tls="tls")),
        ) as (api, _),
    ):
        yield api, fake


async def send_order_shipped(api: Api, template: dict[str, Any] = ORDER_SHIPPED) -> tuple[str, str]:
    address = f"{unique('zoe')}@example.com"
    user_id = await api.put_user(email=address, name="Zoë")
    template_id = await api.put_template(template)
    response = await api.send(user_id=user_id, template=template_id, payload={"order_id": "A-17"})
    assert response.status_code == 202, response.text
    return response.json()["id"], address


async def test_email_goes_out_over_starttls_with_auth_and_is_recorded_as_sent(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    await _sent_over_tls_with_auth(*smtp)


async def test_email_goes_out_over_implicit_tls_with_auth_and_is_recorded_as_sent(
    smtp_over_implicit_tls: tuple[Api, FakeSmtpServer],
) -> None:
    await _sent_over_tls_with_auth(*smtp_over_implicit_tls)


async def _sent_over_tls_with_auth(api: Api, fake: FakeSmtpServer) -> None:
    notification_id, address = await send_order_shipped(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "sent"
    assert email["provider"] == "relay"
    (received,) = fake.for_address(address)
    assert received.tls
    assert received.authenticated_as.endswith(" mailer")
    assert received.mail_from == "noreply@shop.example"
    assert received.message["Subject"] == "Votre commande A-17 est expédiée ✓"
    assert received.message["From"] == SENDER
    assert received.message["Message-ID"] == f"<{email['id']}@shop.example>"
    assert email.get("provider_message_id") == received.message["Message-ID"]


async def test_the_message_is_plain_text_then_html_alternatives(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    api, fake = smtp

    notification_id, address = await send_order_shipped(api)

    await api.settled(notification_id)
    (received,) = fake.for_address(address)
    assert received.message.get_content_type() == "multipart/alternative"
    text, html = received.message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert "Bonjour Zoë" in text.get_content()
    assert html.get_content_type() == "text/html"
    assert "<h1>Bonjour Zoë</h1>" in html.get_content()


async def test_marketing_email_carries_the_one_click_unsubscribe_headers(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    api, fake = smtp
    marketing = {
        "category": "marketing",
        "channels": {
            "email": {"subject": "Soldes", "html": '<a href="{{ unsubscribe_url }}">Stop</a>'}
        },
    }

    notification_id, address = await send_order_shipped(api, marketing)

    await api.settled(notification_id)
    (received,) = fake.for_address(address)
    assert received.message["List-Unsubscribe"].startswith("<http")
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_unknown_mailbox_fails_the_delivery_and_suppresses_the_address(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    api, fake = smtp
    fake.refuse_next_recipient("550 5.1.1 <someone>: Recipient address rejected: User unknown")

    notification_id, address = await send_order_shipped(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "failed"
    assert email["attempts"] == 1
    assert "smtp_550" in email["reason"]
    assert address not in email["reason"]
    assert address in await suppressed(api, "email")


async def test_rejected_content_fails_without_suppressing_the_address(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    api, fake = smtp
    fake.fail_next_data("554 5.6.0 Message content rejected")

    notification_id, address = await send_order_shipped(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "failed"
    assert "smtp_554" in email["reason"]
    assert address not in await suppressed(api, "email")


async def test_temporary_refusal_is_retried_then_sent(smtp: tuple[Api, FakeSmtpServer]) -> None:
    api, fake = smtp
    fake.fail_next_data("451 4.3.0 Mail server temporarily rejected message")

    notification_id, address = await send_order_shipped(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    assert len(fake.for_address(address)) == 1


async def test_server_that_hangs_past_the_timeout_is_retried(
    smtp: tuple[Api, FakeSmtpServer],
) -> None:
    api, fake = smtp
    fake.hang_next_data(2.0)  # the channel's timeout is 1 s

    notification_id, address = await send_order_shipped(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "sent"
    assert email["attempts"] == 2
    assert len(fake.for_address(address)) == 1


async def test_unreachable_and_misconfigured_servers_fail_over_without_showing_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_password = "wrong-password-never-shown"
    caplog.set_level(logging.INFO)
    async with fake_smtp_server(tmp_path) as fake:
        chain = providers_environment(
            "email",
            smtp_table(fake, name="down", port=free_port()),
            smtp_table(fake, name="misconfigured", password=wrong_password),
            smtp_table(fake, name="relay"),
        )
        async with instance_of_its_own("sqlite", tmp_path, environment=chain) as (api, _):
            notification_id, address = await send_order_shipped(api)

            (email,) = (await api.settled(notification_id))["deliveries"]
            audit = await api.http.get(f"/v1/notifications/{notification_id}/audit")

    assert email["status"] == "sent"
    assert email["provider"] == "relay"
    assert len(fake.for_address(address)) == 1
    assert fake.failed_logins > 0  # aiosmtplib tries each mechanism it shares with the server
    for shown in (str(email), audit.text, caplog.text):
        assert wrong_password not in shown
        assert fake.password not in shown


async def test_implicit_tls_server_with_an_untrusted_certificate_fails_without_showing_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with fake_smtp_server(tmp_path, implicit_tls=True) as fake:
        untrusted = smtp_table(fake, tls="tls")
        del untrusted["ca_file"]  # the system's authorities only: the fake's private CA is not one
        chain = providers_environment("email", untrusted)
        async with instance_of_its_own("sqlite", tmp_path, environment=chain) as (api, _):
            notification_id, address = await send_order_shipped(api)

            (email,) = (await api.settled(notification_id))["deliveries"]
            audit = await api.http.get(f"/v1/notifications/{notification_id}/audit")

    assert email["status"] == "dead"  # retried like any unreachable server, then dead-lettered
    assert "TLS certificate is not trusted" in email["reason"]
    assert fake.for_address(address) == []
    assert fake.failed_logins == 0  # the handshake failed before the password could be sent
    for shown in (str(email), audit.text, caplog.text):
        assert fake.password not in shown
