"""The command line: serve, the single roles, migrate, keys, send, templates, dlq, bench."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvloop
from rich.console import Console
from rich.table import Column, Table

from frontdesk.api.auth import KEY_MEMORY_SECONDS
from frontdesk.api.template_folder import read_template_folder
from frontdesk.bootstrap import (
    DELIVERING_CHANNELS,
    Frontdesk,
    build,
    ensure_admin_key,
)
from frontdesk.config import Settings, load_settings
from frontdesk.core.models import Category, Channel, NotificationRequest, TemplateVersion
from frontdesk.errors import FrontdeskError
from frontdesk.logs import configure_logging
from frontdesk.pipeline.replay import Replay, ReplayReport
from frontdesk.store.engine import migrate as migrate_schema

app = typer.Typer(help="frontdesk: multi-channel notifications.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
templates_app = typer.Typer(help="Templates.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter list.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(templates_app, name="templates")
app.add_typer(dlq_app, name="dlq")
console = Console()
T = TypeVar("T")
errors = Console(stderr=True)
_TEMPLATES_PAGE = 200

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="TOML file (default: $FRONTDESK_CONFIG or ./frontdesk.toml)"),
]


def _settings(config: str | None) -> Settings:
    settings = load_settings(config)
    configure_logging(settings.logging.level)
    return settings


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's coroutine; a FrontdeskError is a clean message and exit code 2."""
    try:
        # uvloop: the event loop's own turns (wake-ups from the database threads, callbacks)
        # cost half what asyncio's do, at thousands of deliveries a second.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(work())
    except FrontdeskError as error:
        errors.print(f"[red]error:[/red] {error.detail}", highlight=False)
        for field_error in error.errors:
            errors.print(f"  {field_error.field}: {field_error.message}", highlight=False)
        raise typer.Exit(2) from None


async def _with_instance(settings: Settings, work: Callable[[Frontdesk], Awaitable[Any]]) -> Any:
    instance = await build(settings)
    try:
        return await work(instance)
    finally:
        await instance.stop()


def _start(
    instance: Frontdesk, roles: set[str], channels: Iterable[Channel] = DELIVERING_CHANNELS
) -> None:
    """Start a long-running role. What start-up made lives as long as the process: frozen out
    of the collector's sight, a full collection walks only the work in flight. Walking the
    whole heap stopped the event loop for up to 130 ms at a time under load."""
    instance.start(roles, channels)
    gc.collect()
    gc.freeze()


def _announce_key(key: str | None) -> None:
    if key:
        console.print(
            "[bold]No API key existed, so an admin key was created. It is shown only now:[/bold]\n"
            f"  {key}\n"
            "Use it as 'Authorization: Bearer <key>'. Create more with: frontdesk keys create",
            highlight=False,
        )


def _channels(value: str | None) -> list[Channel]:
    if not value:
        return list(DELIVERING_CHANNELS)
    try:
        return [Channel(name.strip()) for name in value.split(",") if name.strip()]
    except ValueError:
        names = ", ".join(c.value for c in DELIVERING_CHANNELS)
        raise typer.BadParameter(f"channels are a comma-separated list of: {names}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    config: ConfigOption = None,
) -> None:
    """Run every role (api, orchestrator, workers) in one process."""
    settings = _settings(config)

    async def work(instance: Frontdesk) -> None:
        _announce_key(await ensure_admin_key(instance))
        _start(instance, {"orchestrator", "worker"})
        await instance.serve_http(host or settings.server.host, port or settings.server.port)

    _run(lambda: _with_instance(settings, work))


@app.command()
def api(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    config: ConfigOption = None,
) -> None:
    """Run the HTTP API role only (ingest, admin, inbox)."""
    settings = _settings(config)

    async def work(instance: Frontdesk) -> None:
        _announce_key(await ensure_admin_key(instance))
        _start(instance, {"api"})
        await instance.serve_http(host or settings.server.host, port or settings.server.port)

    _run(lambda: _with_instance(settings, work))


@app.command()
def orchestrator(config: ConfigOption = None) -> None:
    """Run the orchestrator role only, until SIGTERM."""
    settings = _settings(config)

    async def work(instance: Frontdesk) -> None:
        _start(instance, {"orchestrator"})
        await _until_signal()

    _run(lambda: _with_instance(settings, work))


@app.command()
def worker(
    channels: Annotated[str | None, typer.Option(help="e.g. email,sms (default: all)")] = None,
    config: ConfigOption = None,
) -> None:
    """Run channel workers only, until SIGTERM."""
    settings = _settings(config)
    chosen = _channels(channels)

    async def work(instance: Frontdesk) -> None:
        _start(instance, {"worker"}, chosen)
        await _until_signal()

    _run(lambda: _with_instance(settings, work))


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema."""
    settings = _settings(config)
    _run(lambda: migrate_schema(settings.database.url))
    console.print("schema is up to date")


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option(help="admin or ingest; repeatable")],
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key and print it (only its hash is stored)."""
    unknown = set(scope) - {"admin", "ingest"}
    if unknown:
        raise typer.BadParameter(
            f"unknown scope(s) {', '.join(sorted(unknown))}; use admin or ingest"
        )
    settings = _settings(config)

    async def work(instance: Frontdesk) -> str:
        _, key = await instance.store.create_api_key(sorted(set(scope)), name)
        return key

    console.print(_run(lambda: _with_instance(settings, work)), highlight=False)


@keys_app.command("list")
def keys_list(config: ConfigOption = None) -> None:
    """Show every API key (never the key itself), oldest first, revoked ones too."""
    settings = _settings(config)
    keys = _run(lambda: _with_instance(settings, lambda instance: instance.store.list_api_keys()))
    table = Table(Column("id", overflow="fold"), "name", "scopes", "created", "revoked")
    for key in keys:
        table.add_row(
            key.id,
            key.name or "",
            ", ".join(sorted(key.scopes)),
            key.created_at.isoformat(),
            key.revoked_at.isoformat() if key.revoked_at else "",
        )
    console.print(table)
    console.print(f"{len(keys)} keys, {sum(key.revoked_at is None for key in keys)} in use")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (frontdesk keys list)")],
    config: ConfigOption = None,
) -> None:
    """Revoke an API key. A running server refuses it within 30 s: it remembers the keys it
    checked that long."""
    settings = _settings(config)
    key = _run(lambda: _with_instance(settings, lambda i: i.store.revoke_api_key(key_id)))
    named = f" ({key.name})" if key.name else ""
    console.print(
        f"revoked {key.id}{named}; running servers refuse it within {KEY_MEMORY_SECONDS:g} s",
        highlight=False,
    )


@app.command()
def send(
    user: Annotated[str, typer.Option(help="Recipient user id")],
    template: Annotated[str, typer.Option(help="Template id")],
    channel: Annotated[
        list[str] | None, typer.Option(help="Restrict to a channel; repeatable")
    ] = None,
    payload: Annotated[str, typer.Option(help="JSON object for the template")] = "{}",
    event_id: Annotated[
        str | None, typer.Option(help="Idempotency event id (default: random)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Accept one notification, exactly as POST /v1/notifications would."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"--payload is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("--payload must be a JSON object")
    try:
        channels = tuple(Channel(c) for c in channel) if channel else None
    except ValueError:
        raise typer.BadParameter(f"unknown channel in {channel}") from None
    request = NotificationRequest(
        event_id=event_id or f"cli-{uuid.uuid4()}",
        user_id=user,
        template=template,
        payload=data,
        channels=channels,
    )
    settings = _settings(config)

    async def work(instance: Frontdesk) -> dict[str, Any]:
        (result,) = await instance.ingest.accept([request])
        if isinstance(result, FrontdeskError):
            raise result
        return {"id": result.notification_id, "status": "accepted", "duplicate": result.duplicate}

    console.print_json(json.dumps(_run(lambda: _with_instance(settings, work))))


@templates_app.command("push")
def templates_push(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="A folder of <template id>.toml or .json files"
        ),
    ],
    check: Annotated[
        bool, typer.Option("--check", help="Check every file, store nothing (for CI)")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Upload every template in a folder: each file holds what PUT /v1/templates/{id} takes.

    Every file is checked first; if any is wrong, each problem is named and nothing is stored.
    A template whose latest version has the same content is left as it is (no new version)."""
    try:
        files = read_template_folder(directory)
    except FrontdeskError as error:
        errors.print(f"[red]error:[/red] nothing stored; in {directory}:", highlight=False)
        for problem in error.errors:
            errors.print(f"  {problem.field}: {problem.message}", highlight=False)
        raise typer.Exit(2) from None
    if check:
        console.print(f"{len(files)} templates checked, none stored (--check)")
        return
    settings = _settings(config)

    async def work(instance: Frontdesk) -> list[tuple[TemplateVersion, bool]]:
        """Each template's latest version after the push, and whether the push made it."""
        latest = await instance.store.latest_template_versions([f.template_id for f in files])
        pushed = []
        for file in files:
            current = latest.get(file.template_id)
            if current is not None and file.version.same_as(current):
                pushed.append((current, False))
                continue
            stored = await instance.store.add_template_version(
                file.template_id,
                file.version.category.value,
                file.version.body,
                file.version.content_hash,
            )
            pushed.append((stored, True))
        return pushed

    pushed = _run(lambda: _with_instance(settings, work))
    table = Table(Column("template", overflow="fold"), "result")
    for template, is_new in pushed:
        result = "stored as version" if is_new else "unchanged, still version"
        table.add_row(template.template_id, f"{result} {template.version}")
    console.print(table)
    stored = sum(is_new for _, is_new in pushed)
    console.print(f"{stored} stored, {len(pushed) - stored} unchanged")


@templates_app.command("list")
def templates_list(
    category: Annotated[
        Category | None, typer.Option(help="Only templates whose latest version is in it")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Show the latest version of every template, by template id."""
    settings = _settings(config)

    async def work(instance: Frontdesk) -> list[TemplateVersion]:
        found: list[TemplateVersion] = []
        while True:
            page = await instance.store.list_latest_templates(
                category.value if category else None,
                found[-1].template_id if found else None,
                _TEMPLATES_PAGE,
            )
            found.extend(page)
            if len(page) < _TEMPLATES_PAGE:
                return found

    found = _run(lambda: _with_instance(settings, work))
    # Folded, not cut short, in a narrow terminal: an id is copied into the next command.
    template_column = Column("template", overflow="fold")
    table = Table(template_column, "latest version", "category", "channels", "updated")
    for template in found:
        table.add_row(
            template.template_id,
            str(template.version),
            template.category.value,
            ", ".join(template.body["channels"]),
            template.created_at.isoformat(),
        )
    console.print(table)
    console.print(f"{len(found)} templates")


@dlq_app.command("list")
def dlq_list(
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    config: ConfigOption = None,
) -> None:
    """Show dead deliveries."""
    settings = _settings(config)
    wanted = _channel(channel) if channel is not None else None
    rows = _run(
        lambda: _with_instance(settings, lambda i: i.store.list_dead_letters(wanted, None, 1000))
    )
    table = Table("delivery", "notification", "channel", "attempts", "last error", "updated")
    for row in rows:
        table.add_row(
            row["id"],
            row["notification_id"],
            row["channel"],
            str(row["attempts"]),
            row["last_error"] or "",
            row["updated_at"].isoformat(),
        )
    console.print(table)
    console.print(f"{len(rows)} dead deliveries")


@dlq_app.command("redrive")
def dlq_redrive(
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    delivery: Annotated[str | None, typer.Option(help="Only this delivery id")] = None,
    config: ConfigOption = None,
) -> None:
    """Put dead deliveries back in their queue; a running server sends them."""
    settings = _settings(config)
    wanted = _channel(channel) if channel is not None else None

    async def work(instance: Frontdesk) -> int:
        fresh = {c: settings.channel(c).max_attempts for c in Channel}
        redriven = await instance.store.redrive(
            fresh_attempts=fresh, delivery_id=delivery, channel=wanted
        )
        return len(redriven)

    console.print(f"redriven: {_run(lambda: _with_instance(settings, work))}")


@app.command()
def replay(
    since: Annotated[str, typer.Option(help="From this time (ISO 8601 with a zone offset)")],
    channel: Annotated[str, typer.Option(help="The channel to backfill")],
    until: Annotated[str | None, typer.Option(help="Up to this time (default: now)")] = None,
    config: ConfigOption = None,
) -> None:
    """Give the events of a period the deliveries a channel never made for them (a channel
    added to a template later); no other channel is touched. A running server sends them."""
    settings = _settings(config)
    wanted = _channel(channel)
    start, end = _moment("--since", since), _moment("--until", until) if until else None

    async def work(instance: Frontdesk) -> ReplayReport:
        return await Replay(instance.store, instance.templates, instance.orchestrator).run(
            wanted, start, end
        )

    report = _run(lambda: _with_instance(settings, work))
    console.print(
        f"examined {report.examined} events without a {wanted.value} delivery: "
        f"{report.backfilled} deliveries made, {report.without_channel} whose template has "
        f"no {wanted.value} content"
    )


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        names = ", ".join(c.value for c in Channel)
        raise typer.BadParameter(f"--channel: {value!r} is not one of {names}") from None


def _moment(option: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{option}: {value!r} needs a zone offset (Z or +01:00)")
    return moment


@app.command()
def bench(
    count: Annotated[int, typer.Option(help="Notifications to push")] = 20_000,
    config: Annotated[
        str | None,
        typer.Option(
            help="Also measure this file's scale-out configuration (PostgreSQL, Kafka, Redis) "
            "with 1, 2 and 4 worker processes"
        ),
    ] = None,
) -> None:
    """The throughput benchmark: the real pipeline against plain inserts on a fresh SQLite.

    It always runs a server with the default settings, as a new installation has them; with
    --config, the scale-out configuration of FILE as well, the same way, in the same run."""
    from frontdesk.bench import run_bench

    scale_out = _settings(config) if config else None
    try:
        run_bench(count, console, scale_out)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def main() -> None:
    app()
