"""One Settings object: a TOML file with FRONTDESK_* variables over it, validated at start.

Where the file comes from: ``--config FILE``, else ``FRONTDESK_CONFIG``, else ``./frontdesk.toml``
when present. A string value may name an environment variable as ``"${NAME}"`` so secrets stay out
of the file. An unknown key or a wrong type stops the start with a message naming it.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator

from frontdesk.core.models import Category, Channel
from frontdesk.errors import ConfigError

_KAFKA_URL = re.compile(r"kafka://[A-Za-z0-9.\-\[\]:]+:\d{1,5}(,[A-Za-z0-9.\-\[\]:]+:\d{1,5})*")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///./frontdesk.db"
    # FULL fsyncs every commit: "accepted means durable" holds through a power cut, not only
    # through a process crash. Commits are batched, so the cost is paid per batch.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"


class TransportSettings(_Section):
    # "embedded" (the store is the event log and the queues) or "kafka://host:9092[,host:9092]".
    url: str = "embedded"
    # Kafka only. Topics are made at start when missing, with this many partitions: the most
    # processes of one role that can share the work of one topic.
    partitions: int = Field(12, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1, le=10)
    # Put before every topic name: several frontdesk installations on one cluster.
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    consumer_group: str = Field("frontdesk", pattern=r"^[A-Za-z0-9._-]+$", max_length=200)
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    # Work handed to Kafka but not taken (its consumer died before its records were read, say)
    # is handed over again after this long; the store refuses to let it be taken twice.
    republish_seconds: float = Field(30, gt=0)

    @field_validator("url")
    @classmethod
    def _known_transport(cls, url: str) -> str:
        if url != "embedded" and not _KAFKA_URL.fullmatch(url):
            raise ValueError('must be "embedded" or "kafka://host:port[,host:port...]"')
        return url

    @property
    def is_kafka(self) -> bool:
        return self.url != "embedded"

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.url.removeprefix("kafka://").split(",")


class RedisSettings(_Section):
    url: str = ""
    # Put before every key: several frontdesk installations on one Redis.
    key_prefix: str = Field("frontdesk:", max_length=100)


class DedupeSettings(_Section):
    window_hours: float = Field(48, gt=0)


class FrequencyCap(_Section):
    count: int = Field(gt=0)
    per_seconds: int = Field(gt=0)


class CategorySettings(_Section):
    frequency_cap: FrequencyCap | None = None


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # Origins of the sites that embed the inbox component (<frontdesk-inbox>): their pages may
    # call the API from the browser (CORS). Empty: only pages served by frontdesk itself.
    cors_origins: list[str] = []
    # How long the links in messages (unsubscribe, preference centre) stay valid.
    link_valid_days: int = Field(30, gt=0, le=3650)
    max_body_bytes: int = Field(5 * 1024 * 1024, gt=0)
    # Each API key's allowance of notifications a second (each item of a batch counts); over
    # it, ingest answers 429 with Retry-After and accepts nothing. Unset: no limit. With Redis
    # configured, every process counts against the same allowance.
    ingest_rate_per_second: float | None = Field(None, gt=0)
    # How many a key may send at once beyond its rate: at least a full batch (1,000 items).
    # Unset: one second's worth, or 1,000 if that is more.
    ingest_burst: int | None = Field(None, ge=1000)

    @property
    def ingest_allowance(self) -> tuple[float, int] | None:
        """(rate per second, burst) when ingest is limited."""
        rate = self.ingest_rate_per_second
        if rate is None:
            return None
        return rate, self.ingest_burst or max(1000, math.ceil(rate))


class AuthSettings(_Section):
    admin_key: str | None = None
    user_token_ttl_seconds: int = Field(3600, gt=0)


class ChannelSettings(_Section):
    max_attempts: int = Field(8, ge=1)
    concurrency: int = Field(50, ge=1)
    # Whether the user's quiet hours hold this channel's messages back; unset means the
    # channel's default: yes for the interruptive ones (sms, push).
    quiet_hours: bool | None = None
    timeout_seconds: float = Field(15, gt=0)
    # A claimed delivery whose worker died is taken again once its lease runs out; it must
    # outlast the slowest send (timeout_seconds) or two workers could send at once.
    lease_seconds: float = Field(60, gt=0)
    retry_base_seconds: float = Field(2, gt=0)
    retry_cap_seconds: float = Field(3600, gt=0)


class ProviderSettings(BaseModel):
    """Common fields; each provider module validates the rest of its table itself."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    name: str | None = None
    # The account's limit: sends above it wait in the queue instead of meeting 429s.
    rate_per_second: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    # The circuit opens after this many failures in a row, or this share of the last 20 sends.
    circuit_failures: int = Field(5, ge=1)
    circuit_failure_rate: float = Field(0.5, gt=0, le=1)
    # How long an open circuit sends the traffic elsewhere before one probe is let through.
    circuit_open_seconds: float = Field(30, gt=0)

    def options(self) -> dict[str, Any]:
        """The provider's own keys: everything but the common ones above."""
        return dict(self.model_extra or {})


class WebhookSettings(_Section):
    # Networks webhooks may reach although they are not public (loopback, private ranges).
    allow_networks: list[IPvAnyNetwork] = []
    timeout_seconds: float = Field(15, gt=0)
    retry_schedule_seconds: list[float] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    rotation_overlap_seconds: int = Field(86400, ge=0)
    # Fernet keys that encrypt signing secrets at rest: the first encrypts, all decrypt.
    encryption_keys: list[str] = []
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    # An endpoint failing without a break for this long is disabled (its owner is told).
    disable_after_seconds: float = Field(5 * 86400, gt=0)
    # A Retry-After is honoured up to this long.
    max_retry_after_seconds: float = Field(86400, ge=0)
    concurrency: int = Field(100, ge=1)  # requests in flight at once, every endpoint together
    endpoint_concurrency: int = Field(10, ge=1)  # ... and to any one endpoint
    circuit_failures: int = Field(5, ge=1)
    circuit_open_seconds: float = Field(60, gt=0)
    # Certificates of private CAs to trust besides the system's (endpoints inside a company).
    ca_file: Path | None = None


class PipelineSettings(_Section):
    # How often idle loops look for work written by other processes or coming due; work
    # written in this process wakes them at once.
    poll_seconds: float = Field(0.5, gt=0)
    # Events the orchestrator takes at once: larger batches cost fewer commits, smaller ones
    # let urgent work overtake a broadcast sooner.
    batch_size: int = Field(500, ge=1, le=5000)
    # Orchestrating a batch takes well under a second; if its process dies, the batch's events
    # are claimed again after this long.
    event_lease_seconds: float = Field(10, gt=0)
    # Deliveries held by quiet hours leave spread over this long after the window ends.
    quiet_hours_spread_seconds: float = Field(300, ge=0)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    transport: TransportSettings = TransportSettings()
    redis: RedisSettings = RedisSettings()
    dedupe: DedupeSettings = DedupeSettings()
    categories: dict[Category, CategorySettings] = {}
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    channels: dict[Channel, ChannelSettings] = {}
    providers: dict[Channel, list[ProviderSettings]] = {}
    webhooks: WebhookSettings = WebhookSettings()
    pipeline: PipelineSettings = PipelineSettings()
    logging: LoggingSettings = LoggingSettings()

    @field_validator("providers")
    @classmethod
    def _email_failover_sends_as_the_primary(
        cls, providers: dict[Channel, list[ProviderSettings]]
    ) -> dict[Channel, list[ProviderSettings]]:
        """A failover email provider without ``from`` sends as the first provider of the channel
        that names one: recipients see one sender whichever provider delivered. Only email: an
        address may be verified with several services, but a phone number belongs to one
        account."""
        chain = providers.get(Channel.EMAIL, [])
        senders = [entry.options()["from"] for entry in chain if "from" in entry.options()]
        if not senders:
            return providers  # each provider that needs a sender says so at start
        primary, *failover = chain
        return {
            **providers,
            Channel.EMAIL: [
                primary,
                *(
                    entry
                    if "from" in entry.options()
                    else entry.model_copy(update={"from": senders[0]})
                    for entry in failover
                ),
            ],
        }

    def channel(self, channel: Channel) -> ChannelSettings:
        return self.channels.get(channel) or ChannelSettings()

    def quiet_channels(self) -> frozenset[Channel]:
        interruptive = {Channel.SMS, Channel.PUSH}
        return frozenset(
            channel
            for channel in Channel
            if (self.channel(channel).quiet_hours is True)
            or (self.channel(channel).quiet_hours is None and channel in interruptive)
        )


# Short names documented in CONTRACT.md; any other key is FRONTDESK_SECTION__KEY.
_ENV_ALIASES = {
    "FRONTDESK_DATABASE_URL": ("database", "url"),
    "FRONTDESK_TRANSPORT": ("transport", "url"),
    "FRONTDESK_REDIS_URL": ("redis", "url"),
    "FRONTDESK_ADMIN_KEY": ("auth", "admin_key"),
    "FRONTDESK_PUBLIC_URL": ("server", "public_url"),
    "FRONTDESK_LOG_LEVEL": ("logging", "level"),
}
_NOT_SETTINGS = {"FRONTDESK_CONFIG"}
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("FRONTDESK_CONFIG"):
        return Path(environ["FRONTDESK_CONFIG"])
    default = Path("frontdesk.toml")
    return default if default.is_file() else None


def load_settings(
    explicit_path: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate; raise ConfigError naming the offending key."""
    environ = os.environ if environ is None else environ
    path = config_path(explicit_path, environ)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
    for name, value in environ.items():
        if name.startswith("FRONTDESK_") and name not in _NOT_SETTINGS:
            # The short names all stand for text (URLs, a key, a level): a key of digits or
            # "true" must stay a string, so only FRONTDESK_SECTION__KEY values are read as TOML.
            parsed = value if name in _ENV_ALIASES else _parse_env_value(value)
            _set_path(raw, _env_key_path(name), parsed)
    resolved = _interpolate(raw, environ, ())
    try:
        return Settings.model_validate(resolved)
    except ValidationError as error:
        problems = "; ".join(
            # pydantic marks a mapping's refused key with a "[key]" step after it: the key
            # itself is the culprit (categories.marketng), so the path ends there.
            f"{'.'.join(str(part) for part in item['loc'] if part != '[key]')}: {item['msg']}"
            for item in error.errors()
        )
        source = f" (in {path} or FRONTDESK_* variables)" if path else ""
        raise ConfigError(f"invalid configuration{source}: {problems}") from None


def _env_key_path(name: str) -> tuple[str, ...]:
    if name in _ENV_ALIASES:
        return _ENV_ALIASES[name]
    parts = tuple(part.lower() for part in name.removeprefix("FRONTDESK_").split("__"))
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"environment variable {name} is not a setting: use FRONTDESK_SECTION__KEY "
            f"or one of {', '.join(sorted(_ENV_ALIASES))}"
        )
    return parts


def _parse_env_value(value: str) -> Any:
    """Numbers, booleans and arrays are read as TOML; anything else stays a string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _set_path(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is not a table")
    target[path[-1]] = value


def _interpolate(value: Any, environ: Mapping[str, str], where: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, environ, (*where, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, environ, (*where, str(i))) for i, item in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"{'.'.join(where)}: environment variable {name} is not set")
            return environ[name]

        return _REFERENCE.sub(substitute, value)
    return value
