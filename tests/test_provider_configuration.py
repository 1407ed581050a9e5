"""A provider's configuration is checked at start: a wrong type, a misplaced provider or a
misspelled key stops the start with a message naming it, and never echoes a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontdesk.bootstrap import build
from frontdesk.errors import ConfigError
from tests.support.databases import sqlite_url
from tests.support.instance import providers_environment
from tests.support.instance import test_settings as settings_for


async def _start_with(tmp_path: Path, channel: str, table: dict[str, Any]) -> str:
    settings = settings_for(sqlite_url(tmp_path), providers_environment(channel, table))
    with pytest.raises(ConfigError) as refused:
        await build(settings)
    return str(refused.value)


async def test_an_unknown_provider_type_is_named_with_the_available_ones(tmp_path: Path) -> None:
    message = await _start_with(tmp_path, "email", {"type": "mailchimp"})

    assert "providers.email[0].type" in message
    assert "'mailchimp'" in message
    assert "smtp" in message and "sandbox" in message


async def test_a_provider_on_the_wrong_channel_is_refused(tmp_path: Path) -> None:
    message = await _start_with(
        tmp_path,
        "email",
        {"type": "twilio", "account_sid": "AC1", "auth_token": "x", "from": "+15005550006"},
    )

    assert "providers.email[0].type" in message
    assert "delivers sms" in message


async def test_a_misspelled_key_is_named_and_the_secret_is_not_echoed(tmp_path: Path) -> None:
    secret = "very-secret-password-0123"
    message = await _start_with(
        tmp_path,
        "email",
        {"type": "smtp", "host": "127.0.0.1", "from": "a@example.com", "pasword": secret},
    )

    assert "providers.email[0].pasword" in message
    assert secret not in message


async def test_two_accounts_of_one_provider_type_are_refused_naming_the_callback(
    tmp_path: Path,
) -> None:
    twilio = {"type": "twilio", "auth_token": "x", "from": "+15005550006"}
    settings = settings_for(
        sqlite_url(tmp_path),
        providers_environment(
            "sms", {**twilio, "account_sid": "AC1"}, {**twilio, "account_sid": "AC2"}
        ),
    )

    with pytest.raises(ConfigError) as refused:
        await build(settings)

    assert "/v1/inbound/twilio/sms" in str(refused.value)
