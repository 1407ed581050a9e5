"""What the provider tests share: keys and accounts to configure a provider with, and what
frontdesk's API says about devices, suppressions and deliveries afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.fakes.fcm import FakeFcm
from tests.support.client import Api, eventually

# What a sender asks of an urgent notification: the providers map both to fields of their own.
CRITICAL_FOR_TEN_MINUTES: dict[str, Any] = {"priority": "critical", "ttl_seconds": 600}


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    """The private key as unencrypted PKCS#8 PEM, as providers' consoles hand keys out."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def fcm_service_account(directory: Path) -> tuple[FakeFcm, Path, str]:
    """A service account's JSON key written in ``directory`` and a fake FCM that trusts it:
    (the fake, the key file, the private key's PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = {
        "type": "service_account",
        "project_id": "frontdesk-test",
        "private_key_id": "0123456789abcdef",
        "private_key": pem(key),
        "client_email": "frontdesk@frontdesk-test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    account_file = directory / "service-account.json"
    account_file.write_text(json.dumps(account))
    fake = FakeFcm(account["project_id"], account["client_email"], key.public_key())
    return fake, account_file, account["private_key"]


async def add_devices(api: Api, user_id: str, *devices: tuple[str, str]) -> None:
    """Register each (token, provider) as one of the user's devices."""
    for token, provider in devices:
        response = await api.http.post(
            f"/v1/users/{user_id}/devices", json={"token": token, "provider": provider}
        )
        assert response.status_code == 201, response.text


async def device_tokens(api: Api, user_id: str) -> list[str]:
    user = (await api.http.get(f"/v1/users/{user_id}")).json()
    return [device["token"] for device in user["devices"]]


async def eventually_forgotten(api: Api, user_id: str, token: str) -> bool:
    """True once the user's device ``token`` is gone (a dead device is removed after the send
    is recorded); fails after 5 seconds."""

    async def forgotten() -> bool:
        return token not in await device_tokens(api, user_id)

    return await eventually(forgotten, timeout=5)


async def suppressed(api: Api, channel: str) -> list[str]:
    """The addresses (emails, numbers) suppressed on ``channel``."""
    response = await api.http.get("/v1/suppressions", params={"channel": channel, "limit": 1000})
    assert response.status_code == 200, response.text
    return [item["address"] for item in response.json()["items"]]


async def eventually_status(api: Api, notification_id: str, status: str) -> dict[str, Any]:
    """The notification's only delivery once it has ``status`` (a callback changed it)."""

    async def with_status() -> dict[str, Any] | None:
        (delivery,) = (await api.notification(notification_id))["deliveries"]
        return delivery if delivery["status"] == status else None

    return await eventually(with_status, timeout=3)


async def everything_shown(
    api: Api, notification_id: str, delivery: dict[str, Any], log_text: str
) -> str:
    """All that an operator may see of a send: the logs, the delivery and its audit trail."""
    audit = (await api.http.get(f"/v1/notifications/{notification_id}/audit")).text
    return log_text + json.dumps(delivery) + audit
