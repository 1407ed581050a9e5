"""The composition root: builds the store, transport, providers and roles from Settings.

The only module that imports adapters. Nothing here is a module-level singleton: each
``Frontdesk`` is a whole, independent instance (the tests run several).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from redis.asyncio import Redis

import frontdesk.providers
from frontdesk.api.app import create_app
from frontdesk.api.published import PublishedRequests
from frontdesk.api.services import ApiServices
from frontdesk.config import ProviderSettings, Settings
from frontdesk.core.allowance import Allowance, LocalAllowances
from frontdesk.core.breaker import CircuitBreaker
from frontdesk.core.models import Channel
from frontdesk.core.ports import (
    Clock,
    InboundHandler,
    IngestLimiter,
    Provider,
    RateLimiter,
    SystemClock,
)
from frontdesk.core.retry import Backoff
from frontdesk.core.sandbox import LocalSandboxFaults, SandboxFaults
from frontdesk.core.tokens import Links
from frontdesk.errors import ConfigError
from frontdesk.logs import get_logger
from frontdesk.metrics import Metrics
from frontdesk.pipeline.failover import FailoverProvider, PushDispatcher, Route
from frontdesk.pipeline.fanout import FanOut
from frontdesk.pipeline.frequency import Cap, FrequencyLedger, Ledger
from frontdesk.pipeline.inbound import InboundProcessor
from frontdesk.pipeline.ingest import Ingest
from frontdesk.pipeline.orchestrator import Orchestrator, OrchestratorSettings
from frontdesk.pipeline.templates import TemplateCatalog
from frontdesk.pipeline.throttle import TokenBucket
from frontdesk.pipeline.webhooks import DispatchSettings, WebhookDispatcher, WebhookFanOut
from frontdesk.pipeline.worker import ChannelWorker, WorkerSettings
from frontdesk.providers.base import ProviderContext
from frontdesk.providers.in_app import InAppProvider
from frontdesk.providers.sandbox import SandboxProvider
from frontdesk.providers.webhook_http import HttpWebhookPoster
from frontdesk.store.engine import migrate
from frontdesk.store.secret_box import SecretBox
from frontdesk.store.sql import SqlStore
from frontdesk.transport.embedded import EmbeddedTransport, LocalInboxFeed
from frontdesk.transport.kafka import KafkaTransport
from frontdesk.transport.redis_sandbox import RedisSandboxFaults
from frontdesk.transport.redis_state import (
    RedisAllowances,
    RedisFrequencyLedger,
    RedisSuppressionCache,
    RedisTokenBucket,
)

log = get_logger(__name__)

ALL_ROLES = frozenset({"api", "orchestrator", "worker"})
# The channels a worker serves when none are named.
DELIVERING_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.IN_APP, Channel.WEBHOOK)
# Provider modules that are not chosen by a configuration's ``type``.
_NOT_CONFIGURABLE = frozenset({"base", "in_app", "sandbox", "webhook_http"})


@dataclass
class Frontdesk:
    """One running instance: every part, and the background tasks of its roles."""

    settings: Settings
    clock: Clock
    store: SqlStore
    transport: EmbeddedTransport | KafkaTransport
    feed: LocalInboxFeed
    faults: SandboxFaults
    metrics: Metrics
    templates: TemplateCatalog
    ingest: Ingest
    orchestrator: Orchestrator
    fanout: FanOut
    workers: dict[Channel, ChannelWorker]
    token_secret: str
    links: Links
    inbound: InboundProcessor
    secret_box: SecretBox
    # The configured providers themselves (behind the workers' failover): their callbacks are
    # served under /v1/inbound/, and their connections closed at stop.
    providers: list[Provider] = field(default_factory=list)
    inbound_handlers: dict[str, InboundHandler] = field(default_factory=dict)
    webhooks: WebhookDispatcher | None = None
    webhook_poster: HttpWebhookPoster | None = None
    redis: Redis | None = None
    ingest_limiter: IngestLimiter | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Kafka's connection outlives the roles' loops: what they finish at stop is still settled.
    _transport_stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _transport_task: asyncio.Task[None] | None = None

    def api_services(self) -> ApiServices:
        return ApiServices(
            store=self.store,
            ingest=self.ingest,
            templates=self.templates,
            transport=self.transport,
            feed=self.feed,
            faults=self.faults,
            clock=self.clock,
            settings=self.settings,
            metrics=self.metrics,
            token_secret=self.token_secret,
            links=self.links,
            inbound=self.inbound,
            secret_box=self.secret_box,
            webhooks_queued=self.webhooks.queued if self.webhooks else lambda: None,
            inbound_handlers=self.inbound_handlers,
            ingest_limiter=self.ingest_limiter,
        )

    def app(self) -> FastAPI:
        return create_app(self.api_services())

    def start(
        self, roles: Iterable[str], channels: Iterable[Channel] = DELIVERING_CHANNELS
    ) -> None:
        """Start the background loops of the roles (the api role has none of its own, but with
        Kafka every role hands its work over)."""
        roles = set(roles)
        if isinstance(self.transport, KafkaTransport) and self._transport_task is None:
            self._transport_task = asyncio.create_task(
                self.transport.run(
                    self._transport_stopping,
                    orchestrating="orchestrator" in roles,
                    channels=set(channels) if "worker" in roles else set(),
                )
            )
        if "orchestrator" in roles:
            self._spawn(self.orchestrator.run(self._stopping))
            self._spawn(self.fanout.run(self._stopping))
            self._spawn(self._housekeeping())
        if "worker" in roles:
            channels = set(channels)
            for channel in channels:
                self._spawn(self.workers[channel].run(self._stopping))
            if Channel.WEBHOOK in channels and self.webhooks is not None:
                self._spawn(self.webhooks.run(self._stopping))

    def _spawn(self, work: object) -> None:
        self._tasks.append(asyncio.create_task(work))  # type: ignore[arg-type]

    async def _housekeeping(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self.store.purge_expired_dedupe_keys(self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 600)

    async def stop(self) -> None:
        """Stop taking work, let what is in flight finish, close the store."""
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport_task is not None:
            self._transport_stopping.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._transport_task, 15)
        for provider in [*self.providers, self.webhook_poster, self.redis]:
            closing = getattr(provider, "aclose", None)
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing()
        await self.store.close()

    async def serve_http(self, host: str, port: int) -> None:
        """Serve the API until SIGINT/SIGTERM (uvicorn handles the signals)."""
        config = uvicorn.Config(
            self.app(),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
        )
        await uvicorn.Server(config).serve()


async def build(
    settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True
) -> Frontdesk:
    clock = clock or SystemClock()
    if run_migrations:
        await migrate(settings.database.url)
    # Timeouts: a Redis that hangs must slow nothing for long (each caller then decides alone).
    redis = (
        Redis.from_url(settings.redis.url, socket_timeout=2, socket_connect_timeout=2)
        if settings.redis.url
        else None
    )
    store = SqlStore.connect(
        settings.database.url,
        clock,
        sqlite_synchronous=settings.database.sqlite_synchronous,
        # With Redis, the suppression list's answers are shared by every process.
        suppression_cache=RedisSuppressionCache(redis, key_prefix=settings.redis.key_prefix)
        if redis is not None
        else None,
    )
    token_secret = await store.server_secret("tokens")
    secret_box = await _secret_box(settings, store)
    links = Links(
        settings.server.public_url, token_secret, timedelta(days=settings.server.link_valid_days)
    )
    transport: EmbeddedTransport | KafkaTransport
    if settings.transport.is_kafka:
        transport = KafkaTransport(
            store,
            settings.transport,
            lambda values: published.admit(values),
            poll_seconds=settings.pipeline.poll_seconds,
            batch_size=settings.pipeline.batch_size,
        )
    else:
        transport = EmbeddedTransport(store)
    feed = LocalInboxFeed()
    # With Redis, a fault switched on through any process is met by every worker process.
    faults: SandboxFaults = (
        RedisSandboxFaults(redis, key_prefix=settings.redis.key_prefix)
        if redis is not None
        else LocalSandboxFaults()
    )
    metrics = Metrics()
    templates = TemplateCatalog(store)
    ingest = Ingest(
        store,
        transport,
        templates,
        clock,
        dedupe_window=timedelta(hours=settings.dedupe.window_hours),
    )
    published = PublishedRequests(ingest, clock)
    caps = {
        name.value: Cap(category.frequency_cap.count, category.frequency_cap.per_seconds)
        for name, category in settings.categories.items()
        if category.frequency_cap is not None
    }
    # With Redis, caps and collapse windows hold across every orchestrator process.
    ledger: Ledger = (
        RedisFrequencyLedger(
            redis,
            store,
            caps,
            FrequencyLedger(store, caps),
            key_prefix=settings.redis.key_prefix,
        )
        if redis is not None
        else FrequencyLedger(store, caps)
    )
    orchestrator = Orchestrator(
        store,
        transport,
        templates,
        clock,
        OrchestratorSettings(
            max_attempts={c: settings.channel(c).max_attempts for c in Channel},
            quiet_channels=settings.quiet_channels(),
            quiet_spread_seconds=settings.pipeline.quiet_hours_spread_seconds,
            batch_size=settings.pipeline.batch_size,
            lease_seconds=settings.pipeline.event_lease_seconds,
            poll_seconds=settings.pipeline.poll_seconds,
        ),
        links=links,
        ledger=ledger,
    )

    def rate_limiter(account: str, rate: float, burst: int) -> RateLimiter:
        """An account's bucket: in Redis, shared by every process sending through it (they
        must give the account the same name), or in this process alone."""
        if redis is None:
            return TokenBucket(rate, burst)
        return RedisTokenBucket(redis, f"{settings.redis.key_prefix}rate:{account}", rate, burst)

    webhook_poster = HttpWebhookPoster(
        settings.webhooks.allow_networks, clock, ca_file=settings.webhooks.ca_file
    )
    webhooks = WebhookDispatcher(
        store, webhook_poster, secret_box.open, clock, _dispatch_settings(settings)
    )
    fan_out = WebhookFanOut(
        store,
        clock,
        max_payload_bytes=settings.webhooks.max_payload_bytes,
        queued=webhooks.queued,
    )
    providers: list[Provider] = []
    workers = {
        channel: ChannelWorker(
            channel,
            [fan_out]
            if channel is Channel.WEBHOOK
            else _providers(
                settings, channel, store, feed, faults, clock, metrics, providers, rate_limiter
            ),
            store,
            transport,
            clock,
            _worker_settings(settings, channel),
            metrics=metrics,
        )
        for channel in DELIVERING_CHANNELS
    }
    return Frontdesk(
        settings=settings,
        clock=clock,
        store=store,
        transport=transport,
        feed=feed,
        faults=faults,
        metrics=metrics,
        templates=templates,
        ingest=ingest,
        orchestrator=orchestrator,
        fanout=FanOut(
            store,
            transport,
            templates,
            clock,
            dedupe_hours=settings.dedupe.window_hours,
            poll_seconds=settings.pipeline.poll_seconds,
        ),
        workers=workers,
        token_secret=token_secret,
        links=links,
        inbound=InboundProcessor(store),
        secret_box=secret_box,
        providers=providers,
        inbound_handlers=_inbound_handlers(providers),
        webhooks=webhooks,
        webhook_poster=webhook_poster,
        redis=redis,
        ingest_limiter=_ingest_limiter(settings, redis),
    )


def _ingest_limiter(settings: Settings, redis: Redis | None) -> IngestLimiter | None:
    allowance = settings.server.ingest_allowance
    if allowance is None:
        return None
    if redis is None:
        return LocalAllowances(Allowance(*allowance))
    return RedisAllowances(redis, f"{settings.redis.key_prefix}ingest:", Allowance(*allowance))


async def ensure_admin_key(instance: Frontdesk) -> str | None:
    """Record FRONTDESK_ADMIN_KEY; with no key at all, make one and return it to be shown once."""
    configured = instance.settings.auth.admin_key
    if configured:
        await instance.store.ensure_api_key(
            configured, ["admin"], "bootstrap (FRONTDESK_ADMIN_KEY)"
        )
        return None
    if await instance.store.count_api_keys() == 0:
        _, key = await instance.store.create_api_key(["admin"], "created on first start")
        return key
    return None


def _worker_settings(settings: Settings, channel: Channel) -> WorkerSettings:
    channel_settings = settings.channel(channel)
    return WorkerSettings(
        concurrency=channel_settings.concurrency,
        timeout_seconds=channel_settings.timeout_seconds,
        lease_seconds=channel_settings.lease_seconds,
        backoff=Backoff(
            base_seconds=channel_settings.retry_base_seconds,
            cap_seconds=channel_settings.retry_cap_seconds,
        ),
        poll_seconds=settings.pipeline.poll_seconds,
    )


def _providers(
    settings: Settings,
    channel: Channel,
    store: SqlStore,
    feed: LocalInboxFeed,
    faults: SandboxFaults,
    clock: Clock,
    metrics: Metrics,
    built: list[Provider],
    rate_limiter: Callable[[str, float, int], RateLimiter],
) -> list[Provider]:
    """What the channel's worker sends through: the inbox, the sandbox (a channel with no
    provider configured), or the configured providers behind failover, breakers and buckets."""
    if channel is Channel.IN_APP:
        return [InAppProvider(store, feed, clock)]
    configured = settings.providers.get(channel, [])
    if not configured:
        return [SandboxProvider(channel, store, faults, clock)]
    timeout = settings.channel(channel).timeout_seconds
    routes: dict[str, list[Route]] = {}
    for index, entry in enumerate(configured):
        if entry.type == "sandbox":
            options = _sandbox_options(entry.options(), channel, index)
            provider: Provider = SandboxProvider(channel, store, faults, clock, **options)
        else:
            context = ProviderContext(
                name=entry.name or entry.type,
                clock=clock,
                timeout_seconds=timeout,
                public_url=settings.server.public_url,
                allowed_networks=settings.webhooks.allow_networks,
            )
            provider = _real_provider(channel, index, entry, context)
            built.append(provider)
        bucket = (
            rate_limiter(
                f"{channel.value}:{entry.name or entry.type}",
                entry.rate_per_second,
                entry.burst or max(1, int(entry.rate_per_second)),
            )
            if entry.rate_per_second
            else None
        )
        breaker = CircuitBreaker(
            failure_run=entry.circuit_failures,
            failure_rate=entry.circuit_failure_rate,
            open_seconds=entry.circuit_open_seconds,
        )
        # Push routes by the kind of device token (fcm, apns, webpush); other channels have one
        # ordered list.
        kind = entry.type if channel is Channel.PUSH else channel.value
        routes.setdefault(kind, []).append(Route(provider, breaker, bucket))
    chains = {
        kind: FailoverProvider(channel, chain, clock, metrics, timeout_seconds=timeout)
        for kind, chain in routes.items()
    }
    if channel is Channel.PUSH:
        return [PushDispatcher(chains)]
    return [chains[channel.value]]


def _real_provider(
    channel: Channel, index: int, entry: ProviderSettings, context: ProviderContext
) -> Provider:
    where = f"providers.{channel.value}[{index}]"
    module = _provider_module(entry.type, where)
    if getattr(module, "CHANNEL", None) is not channel:
        raise ConfigError(
            f"{where}.type: {entry.type!r} delivers {module.CHANNEL.value}, not {channel.value}"
        )
    try:
        options = module.Options.model_validate(entry.options())
    except ValidationError as error:
        problems = "; ".join(
            f"{where}.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    provider: Provider = module.build(options, context)
    return provider


def _provider_module(provider_type: str, where: str) -> ModuleType:
    """``frontdesk.providers.<type>``: adding a provider is adding its module (one with a
    ``build``; the package also holds what providers share)."""
    modules = {info.name for info in pkgutil.iter_modules(frontdesk.providers.__path__)}
    if provider_type in modules - _NOT_CONFIGURABLE:
        module = importlib.import_module(f"frontdesk.providers.{provider_type}")
        if hasattr(module, "build"):
            return module
    available = sorted(
        name
        for name in modules - _NOT_CONFIGURABLE
        if hasattr(importlib.import_module(f"frontdesk.providers.{name}"), "build")
    )
    raise ConfigError(
        f"{where}.type: unknown provider type {provider_type!r}; "
        f"available: {', '.join(['sandbox', *available])}"
    )


def _sandbox_options(extra: Mapping[str, object], channel: Channel, index: int) -> dict[str, str]:
    unknown = set(extra) - {"from"}
    if unknown:
        raise ConfigError(
            f"providers.{channel.value}[{index}]: unknown key(s) {', '.join(sorted(unknown))} "
            "for the sandbox provider"
        )
    return {"sender": str(extra["from"])} if "from" in extra else {}


async def _secret_box(settings: Settings, store: SqlStore) -> SecretBox:
    """Secrets at rest are encrypted under the configured keys, else under a key kept in the
    database (which protects nothing against whoever can read the database: said at start)."""
    keys = settings.webhooks.encryption_keys
    if not keys:
        log.warning(
            "webhooks.encryption_keys is not set: stored webhook secrets are encrypted under a "
            "key kept in the same database"
        )
        keys = [await store.server_secret("secret-box", SecretBox.new_key)]
    return SecretBox(keys)


def _dispatch_settings(settings: Settings) -> DispatchSettings:
    webhooks = settings.webhooks
    return DispatchSettings(
        retry_schedule_seconds=webhooks.retry_schedule_seconds,
        timeout_seconds=webhooks.timeout_seconds,
        user_agent=f"frontdesk/{frontdesk.__version__} (webhooks)",
        concurrency=webhooks.concurrency,
        per_endpoint_concurrency=webhooks.endpoint_concurrency,
        max_retry_after_seconds=webhooks.max_retry_after_seconds,
        disable_after_seconds=webhooks.disable_after_seconds,
        circuit_failures=webhooks.circuit_failures,
        circuit_open_seconds=webhooks.circuit_open_seconds,
        poll_seconds=settings.pipeline.poll_seconds,
    )


def _inbound_handlers(providers: Iterable[Provider]) -> dict[str, InboundHandler]:
    """Each provider's callbacks, by path under /v1/inbound/. Two providers of one type (two
    Twilio accounts, say) would answer at the same path with different keys: refused at start
    rather than one silently shadowing the other."""
    handlers: dict[str, InboundHandler] = {}
    for provider in providers:
        for handler in getattr(provider, "inbound_handlers", list)():
            if handler.path in handlers:
                raise ConfigError(
                    f"providers: two providers take callbacks at /v1/inbound/{handler.path}; "
                    "configure one account per provider type"
                )
            handlers[handler.path] = handler
    return handlers
