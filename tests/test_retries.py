"""Retries with backoff, permanent failures, the dead-letter list and redrive.

Faults are switched on in the sandbox provider through its admin API, as an operator would
to rehearse a provider outage; nothing inside frontdesk is mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.cli import frontdesk_cli
from tests.support.client import Api, eventually, unique
from tests.support.databases import sqlite_url

EMAIL_ONLY = {"channels": {"email": {"subject": "Hello {{ user.name }}", "html": "<p>Hi</p>"}}}


@pytest.fixture
async def email_faults(api: Api) -> AsyncIterator[Api]:
    yield api
    await api.http.delete("/v1/sandbox/faults/email")


async def _send_email(api: Api) -> tuple[str, str]:
    address = f"{unique('retry')}@example.com"
    user_id = await api.put_user(email=address, name="Ada")
    template = await api.put_template(EMAIL_ONLY)
    response = await api.send(user_id=user_id, template=template)
    assert response.status_code == 202
    return response.json()["id"], address


async def test_retryable_failure_is_retried_with_backoff_then_sent(email_faults: Api) -> None:
    api = email_faults
    await api.http.put("/v1/sandbox/faults/email", json={"error": "retryable", "times": 2})

    notification_id, address = await _send_email(api)

    found = await api.settled(notification_id)
    (email,) = found["deliveries"]
    assert email["status"] == "sent"
    assert email["attempts"] == 3
    audit = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()["items"]
    retried = [e for e in audit if e["type"] == "delivery.retried"]
    assert len(retried) == 2
    assert all(e["reason"].startswith("retrying in ") for e in retried)
    assert len(await api.sandbox(channel="email", to=address)) == 1


async def test_permanent_failure_ends_the_delivery_without_retry(email_faults: Api) -> None:
    api = email_faults
    await api.http.put("/v1/sandbox/faults/email", json={"error": "permanent", "times": 1})

    notification_id, address = await _send_email(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "failed"
    assert email["attempts"] == 1
    assert "permanent" in email["reason"]
    assert await api.sandbox(channel="email", to=address) == []


async def test_channel_that_always_fails_ends_in_dead_letters(email_faults: Api) -> None:
    api = email_faults
    await api.http.put("/v1/sandbox/faults/email", json={"error": "retryable"})

    notification_id, _ = await _send_email(api)

    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "dead"
    assert email["attempts"] == 3
    assert email["reason"].startswith("retries exhausted after 3 attempts")
    dead = (await api.http.get("/v1/dead-letters", params={"channel": "email"})).json()["items"]
    assert email["id"] in [d["id"] for d in dead]


async def test_redrive_through_the_api_delivers_once_the_fault_is_gone(email_faults: Api) -> None:
    api = email_faults
    await api.http.put("/v1/sandbox/faults/email", json={"error": "retryable"})
    notification_id, address = await _send_email(api)
    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "dead"
    await api.http.delete("/v1/sandbox/faults/email")

    response = await api.http.post(f"/v1/dead-letters/{email['id']}/redrive")

    assert response.status_code == 200
    assert response.json()["delivery_ids"] == [email["id"]]
    (redriven,) = (await api.settled(notification_id))["deliveries"]
    assert redriven["id"] == email["id"], "redrive reuses the delivery"
    assert redriven["status"] == "sent"
    assert len(await api.sandbox(channel="email", to=address)) == 1
    audit = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).json()["items"]
    assert "delivery.redriven" in [e["type"] for e in audit]


async def test_redriving_a_delivery_that_is_not_dead_is_a_conflict(api: Api) -> None:
    notification_id, _ = await _send_email(api)
    (email,) = (await api.settled(notification_id))["deliveries"]

    response = await api.http.post(f"/v1/dead-letters/{email['id']}/redrive")

    assert response.status_code == 409
    assert "sent" in response.json()["detail"]


async def test_redrive_through_the_cli_delivers_once_the_fault_is_gone(
    email_faults: Api, database_url: str
) -> None:
    api = email_faults
    await api.http.put("/v1/sandbox/faults/email", json={"error": "retryable"})
    notification_id, address = await _send_email(api)
    assert (await api.settled(notification_id))["deliveries"][0]["status"] == "dead"
    await api.http.delete("/v1/sandbox/faults/email")

    code, stdout, stderr = await frontdesk_cli(database_url, "dlq", "redrive", "--channel", "email")

    assert code == 0, stderr
    assert "redriven:" in stdout
    (email,) = (await api.settled(notification_id))["deliveries"]
    assert email["status"] == "sent"

    async def sent_once() -> bool:
        return len(await api.sandbox(channel="email", to=address)) == 1

    await eventually(sent_once)


@pytest.mark.parametrize("command", ["list", "redrive"])
async def test_the_dead_letter_commands_refuse_an_unknown_channel_naming_the_valid_ones(
    command: str, tmp_path: Path
) -> None:
    code, stdout, stderr = await frontdesk_cli(
        sqlite_url(tmp_path), "dlq", command, "--channel", "bogus"
    )

    assert code == 2
    assert "--channel: 'bogus' is not one of email, sms, push, in_app, webhook" in stderr
    assert stdout == ""
