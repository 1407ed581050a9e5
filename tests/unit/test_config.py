"""Settings: a TOML file, FRONTDESK_* variables over it, and errors that name the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.config import load_settings
from frontdesk.core.models import Category, Channel
from frontdesk.errors import ConfigError


@pytest.fixture(autouse=True)
def _work_in_an_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings falls back to ./frontdesk.toml; a stray one must not leak into these tests.
    monkeypatch.chdir(tmp_path)


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_without_file_or_variables_every_setting_has_its_default() -> None:
    settings = load_settings(None, {})

    assert settings.database.url == "sqlite:///./frontdesk.db"
    assert settings.transport.url == "embedded"
    assert settings.auth.admin_key is None
    assert settings.server.port == 8080
    assert settings.channel(Channel.SMS).max_attempts == 8


def test_values_in_the_file_are_used(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        """
        [database]
        url = "postgresql://db/frontdesk"

        [server]
        port = 9090

        [channels.sms]
        max_attempts = 4
        """,
    )

    settings = load_settings(path, {})

    assert settings.database.url == "postgresql://db/frontdesk"
    assert settings.server.port == 9090
    assert settings.channel(Channel.SMS).max_attempts == 4
    assert settings.channel(Channel.EMAIL).max_attempts == 8


def test_frontdesk_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[transport]\nurl = "kafka://broker:9092"\n')

    settings = load_settings(None, {"FRONTDESK_CONFIG": path})

    assert settings.transport.url == "kafka://broker:9092"


def test_frontdesk_toml_in_the_working_directory_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "frontdesk.toml").write_text("[server]\nport = 7070\n", encoding="utf-8")

    assert load_settings(None, {}).server.port == 7070


def test_short_variable_names_set_their_documented_settings() -> None:
    settings = load_settings(
        None,
        {
            "FRONTDESK_DATABASE_URL": "postgresql://db/frontdesk",
            "FRONTDESK_TRANSPORT": "kafka://broker:9092",
            "FRONTDESK_ADMIN_KEY": "fd_admin_secret",
        },
    )

    assert settings.database.url == "postgresql://db/frontdesk"
    assert settings.transport.url == "kafka://broker:9092"
    assert settings.auth.admin_key == "fd_admin_secret"


@pytest.mark.parametrize("admin_key", ["20260301", "true", "1.5", "inf"])
def test_an_admin_key_that_looks_like_a_number_or_boolean_stays_a_string(admin_key: str) -> None:
    settings = load_settings(None, {"FRONTDESK_ADMIN_KEY": admin_key})

    assert settings.auth.admin_key == admin_key


def test_a_double_underscore_variable_sets_a_nested_setting_as_a_number() -> None:
    settings = load_settings(None, {"FRONTDESK_CHANNELS__SMS__MAX_ATTEMPTS": "3"})

    max_attempts = settings.channel(Channel.SMS).max_attempts
    assert max_attempts == 3
    assert isinstance(max_attempts, int)


def test_a_variable_beats_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[database]\nurl = "sqlite:///from-file.db"\n')

    settings = load_settings(path, {"FRONTDESK_DATABASE_URL": "postgresql://db/from-env"})

    assert settings.database.url == "postgresql://db/from-env"


def test_a_nested_variable_replaces_one_key_and_keeps_the_rest_of_the_files_table(
    tmp_path: Path,
) -> None:
    path = config_file(tmp_path, "[channels.sms]\nmax_attempts = 4\nconcurrency = 5\n")

    settings = load_settings(path, {"FRONTDESK_CHANNELS__SMS__MAX_ATTEMPTS": "3"})

    assert settings.channel(Channel.SMS).max_attempts == 3
    assert settings.channel(Channel.SMS).concurrency == 5


def test_a_string_naming_a_variable_takes_the_variables_value(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        """
        [auth]
        admin_key = "${ADMIN_SECRET}"

        [database]
        url = "postgresql://app:${DB_PASSWORD}@db/frontdesk"
        """,
    )

    settings = load_settings(path, {"ADMIN_SECRET": "s3cret", "DB_PASSWORD": "pw"})

    assert settings.auth.admin_key == "s3cret"
    assert settings.database.url == "postgresql://app:pw@db/frontdesk"


def test_a_reference_to_an_unset_variable_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[auth]\nadmin_key = "${ADMIN_SECRET}"\n')

    with pytest.raises(ConfigError) as raised:
        load_settings(path, {})

    assert "auth.admin_key" in str(raised.value)
    assert "ADMIN_SECRET" in str(raised.value)


def test_an_unknown_key_in_the_file_is_named_by_its_dotted_path(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[channels.sms]\nmaxattempts = 3\n")

    with pytest.raises(ConfigError, match=r"channels\.sms\.maxattempts"):
        load_settings(path, {})


def test_an_unknown_section_in_the_file_is_named(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[databse]\nurl = 'sqlite:///x.db'\n")

    with pytest.raises(ConfigError, match="databse"):
        load_settings(path, {})


def test_a_value_of_the_wrong_type_is_named_by_its_key(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[server]\nport = "eighty"\n')

    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(path, {})


def test_a_variable_of_the_wrong_type_is_named_by_its_key() -> None:
    with pytest.raises(ConfigError, match=r"channels\.sms\.max_attempts"):
        load_settings(None, {"FRONTDESK_CHANNELS__SMS__MAX_ATTEMPTS": "many"})


def test_ingest_is_unlimited_unless_a_rate_is_set() -> None:
    assert load_settings(None, {}).server.ingest_allowance is None


def test_an_ingest_rate_alone_allows_a_full_batch_or_a_seconds_worth_at_once() -> None:
    slow = load_settings(None, {"FRONTDESK_SERVER__INGEST_RATE_PER_SECOND": "50"})
    fast = load_settings(None, {"FRONTDESK_SERVER__INGEST_RATE_PER_SECOND": "2500.5"})

    assert slow.server.ingest_allowance == (50, 1000)
    assert fast.server.ingest_allowance == (2500.5, 2501)


def test_an_ingest_burst_smaller_than_a_full_batch_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"server\.ingest_burst.*1000"):
        load_settings(
            None,
            {
                "FRONTDESK_SERVER__INGEST_RATE_PER_SECOND": "10",
                "FRONTDESK_SERVER__INGEST_BURST": "999",
            },
        )


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[server\nport = 1\n")

    with pytest.raises(ConfigError, match=r"settings\.toml"):
        load_settings(path, {})


def test_a_config_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")

    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_settings(missing, {})


def test_a_frontdesk_variable_without_a_section_is_named() -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_FOO"):
        load_settings(None, {"FRONTDESK_FOO": "bar"})


def test_variables_outside_the_frontdesk_namespace_are_ignored() -> None:
    settings = load_settings(None, {"DATABASE_URL": "postgresql://elsewhere/db", "HOME": "/root"})

    assert settings.database.url == "sqlite:///./frontdesk.db"


def test_the_example_scale_out_configuration_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "scale-out.toml"

    settings = load_settings(str(example), {})

    assert settings.transport.is_kafka
    assert settings.transport.bootstrap_servers == ["127.0.0.1:9092"]
    assert settings.redis.url.startswith("redis://")


@pytest.mark.parametrize(
    "url", ["kafka://", "kafka://broker", "http://broker:9092", "kafka://a:9092,", "redpanda:9092"]
)
def test_a_transport_url_that_is_neither_embedded_nor_kafka_is_named(url: str) -> None:
    with pytest.raises(ConfigError, match=r"transport\.url"):
        load_settings(None, {"FRONTDESK_TRANSPORT": url})


def test_several_kafka_brokers_are_all_bootstrap_servers() -> None:
    settings = load_settings(None, {"FRONTDESK_TRANSPORT": "kafka://k1:9092,k2:9093"})

    assert settings.transport.bootstrap_servers == ["k1:9092", "k2:9093"]


def test_a_category_that_is_not_one_of_the_known_ones_is_named(tmp_path: Path) -> None:
    path = config_file(
        tmp_path, "[categories.marketng]\nfrequency_cap = { count = 3, per_seconds = 86400 }\n"
    )

    with pytest.raises(ConfigError) as refused:
        load_settings(path, {})

    assert "categories.marketng:" in str(refused.value)
    assert "'transactional' or 'marketing'" in str(refused.value)


def test_a_known_category_takes_its_frequency_cap() -> None:
    settings = load_settings(
        None,
        {"FRONTDESK_CATEGORIES__MARKETING__FREQUENCY_CAP": "{ count = 3, per_seconds = 86400 }"},
    )

    cap = settings.categories[Category.MARKETING].frequency_cap
    assert cap is not None
    assert (cap.count, cap.per_seconds) == (3, 86400)


def test_a_failover_email_provider_without_from_sends_as_the_first_that_names_one(
    tmp_path: Path,
) -> None:
    path = config_file(
        tmp_path,
        """
        [[providers.email]]
        type = "sandbox"

        [[providers.email]]
        type = "smtp"
        host = "127.0.0.1"
        from = "Shop <noreply@shop.example>"

        [[providers.email]]
        type = "postmark"
        server_token = "pm-token"
        """,
    )

    settings = load_settings(path, {})

    senders = [entry.options().get("from") for entry in settings.providers[Channel.EMAIL]]
    assert senders == [None, "Shop <noreply@shop.example>", "Shop <noreply@shop.example>"]


def test_a_failover_email_provider_that_names_its_own_sender_keeps_it(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        """
        [[providers.email]]
        type = "smtp"
        host = "127.0.0.1"
        from = "Shop <noreply@shop.example>"

        [[providers.email]]
        type = "postmark"
        server_token = "pm-token"
        from = "Shop Support <support@shop.example>"
        """,
    )

    settings = load_settings(path, {})

    backup = settings.providers[Channel.EMAIL][1]
    assert backup.options()["from"] == "Shop Support <support@shop.example>"
