"""A provider's configuration is checked at start: a wrong type, a misplaced provider or a
misspelled key stops the start with a message naming it, and never echoes a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from frontdesk.bootstrap import build
from frontdesk.config import load_settings
from frontdesk.errors import ConfigError
from tests.providers.support import fcm_service_account
from tests.support.databases import sqlite_url
from tests.support.instance import providers_environment
from tests.support.instance import test_settings as settings_for

# CONTRACT.md's example configuration, word for word: where a new installation starts from.
CONTRACT_EXAMPLE = """
[database]
url = "sqlite:///./frontdesk.db"        # or "postgresql://user@host/db"

[transport]
url = "embedded"                        # or "kafka://host:9092"

[redis]
url = ""                                # optional: "redis://127.0.0.1:6379/0"

[dedupe]
window_hours = 48

[categories.marketing]                  # per category: caps per user and channel
frequency_cap = { count = 3, per_seconds = 86400 }

[server]
public_url = "http://127.0.0.1:8080"    # base of links in messages (unsubscribe, preferences)

[channels.sms]                          # one table per channel, all optional
max_attempts = 8
concurrency = 50
quiet_hours = true                      # sms and push default true

[[providers.email]]                     # ordered: primary first, then failover
name = "primary"
type = "smtp"                           # smtp | ses | postmark | sandbox
host = "127.0.0.1"
port = 2525
from = "Shop <noreply@shop.example>"
rate_per_second = 14
burst = 28

[[providers.email]]
name = "backup"
type = "postmark"
server_token = "${POSTMARK_TOKEN}"
base_url = "https://api.postmarkapp.com"

[[providers.sms]]
type = "twilio"                         # base_url defaults to Twilio's own
account_sid = "AC..."
auth_token = "${TWILIO_AUTH_TOKEN}"
from = "+15005550006"
base_url = "https://api.twilio.com"

[[providers.push]]
type = "fcm"                            # fcm | apns | webpush | sandbox
project_id = "my-project"
service_account_file = "fcm.json"
base_url = "https://fcm.googleapis.com"
token_url = "https://oauth2.googleapis.com/token"

[webhooks]
allow_networks = []                     # CIDRs exempt from SSRF blocking
timeout_seconds = 15
retry_schedule_seconds = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
rotation_overlap_seconds = 86400
"""


async def _start_with(tmp_path: Path, channel: str, *tables: dict[str, Any]) -> str:
    settings = settings_for(sqlite_url(tmp_path), providers_environment(channel, *tables))
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


async def test_the_contracts_example_configuration_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's database and fcm.json are relative paths
    fcm_service_account(tmp_path)[1].rename("fcm.json")
    Path("frontdesk.toml").write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    settings = load_settings(
        "frontdesk.toml", {"POSTMARK_TOKEN": "pm-token", "TWILIO_AUTH_TOKEN": "twilio-token"}
    )

    instance = await build(settings)
    await instance.stop()

    assert [provider.name for provider in instance.providers] == [
        "primary",
        "backup",
        "twilio",
        "fcm",
    ]


async def test_a_failover_email_provider_is_refused_when_no_provider_names_a_sender(
    tmp_path: Path,
) -> None:
    message = await _start_with(
        tmp_path, "email", {"type": "sandbox"}, {"type": "postmark", "server_token": "pm-token"}
    )

    assert "providers.email[1].from" in message
