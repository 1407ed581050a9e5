"""The throughput benchmark: the real server end to end, against plain inserts on the same database.

``frontdesk bench`` starts ``frontdesk serve`` with default settings on a fresh SQLite file, pushes
notifications through the batch API at full load and then at half the rate it reached, and reads
the outcome from the database: accepted/s, delivered/s end to end, and accept→delivered latency.
It then writes the same rows per notification into a second fresh database with plain batched
inserts: the floor, what the database alone costs, that the pipeline is measured against.

``frontdesk bench --config FILE`` measures, in the same run and the same way, the scale-out
configuration of FILE (PostgreSQL, Kafka, Redis) as separate processes: one api, one
orchestrator and 1, 2 and 4 worker processes, each time on a fresh database, topics and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Table as SqlTable
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from frontdesk.config import Settings
from frontdesk.store import tables as t
from frontdesk.store.driver import DriverStatements
from frontdesk.store.engine import create_engines, migrate, sqlite_pragmas

BATCH = 1_000  # the API's largest batch; also the floor's notifications per commit
IN_FLIGHT = 2
HALF_BATCH = 100  # small batches on a fixed schedule, so half load arrives evenly
HALF_SECONDS = 8.0
SETTLE_SECONDS = 60.0
BUDGET_SECONDS = 80.0  # both server phases; start-up, the floor and the report fit in 2 minutes
WORKER_COUNTS = (1, 2, 4)  # worker processes of the scale-out runs
TARGET_RATE, TARGET_P99_MS = 5_000.0, 250.0
CHANNELS = 2  # the bench template has email and in_app
TEMPLATE = {
    "channels": {
        "email": {"subject": "Order {{ payload.n }}", "html": "<p>{{ user.name }}: sent</p>"},
        "in_app": {"title": "Order {{ payload.n }}", "body": "It has shipped."},
    }
}
_PENDING = ("queued", "deferred", "sending")
_DELIVERED_STATUSES = ("sent", "delivered", "read")
_d, _n = t.deliveries, t.notifications
# Final: nothing more will happen to the delivery ('sent', 'failed', 'skipped', 'dead', ...).
SETTLED_COUNT = select(func.count()).where(_d.c.status.not_in(_PENDING))
SETTLED_TIMES = (  # per notification: created, last settled, deliveries final, delivered
    select(
        _n.c.id,
        _n.c.created_at,
        func.max(_d.c.updated_at),
        func.count(),
        func.sum(case((_d.c.status.in_(_DELIVERED_STATUSES), 1), else_=0)),
    )
    .join(_d, _d.c.notification_id == _n.c.id)
    .where(_d.c.status.not_in(_PENDING))
    .group_by(_n.c.id, _n.c.created_at)
)


@dataclass
class Phase:
    name: str
    planned: int
    sent: int  # fewer than planned only when sending ran out of time
    accept_seconds: float  # first request sent → last response
    delivered: int  # notifications whose deliveries all went out (sent, delivered or read)
    undelivered: int  # notifications with a delivery that ended otherwise (failed, dead, ...)
    deliver_seconds: float  # first request sent → last delivery went out
    p50_ms: float  # accept → last delivery went out
    p99_ms: float

    @property
    def timed_out(self) -> bool:
        return self.delivered + self.undelivered < self.planned

    @property
    def passed(self) -> bool:
        return self.delivered == self.planned

    def row(self) -> list[str]:
        notifications = f"{self.delivered:,}" + ("" if self.passed else f" of {self.planned:,}")
        notifications += ", timed out" if self.timed_out else ""
        notifications += f", {self.undelivered:,} not delivered" if self.undelivered else ""
        accepted, delivered = self.sent / self.accept_seconds, self.delivered / self.deliver_seconds
        latency = f"{self.p50_ms:,.1f}", f"{self.p99_ms:,.1f}"
        return [self.name, notifications, f"{accepted:,.0f}", f"{delivered:,.0f}", *latency]


@dataclass
class Run:
    client: httpx.AsyncClient
    reader: AsyncEngine  # reads the server's database: the bench adds nothing to it
    progress: Progress
    deadline: float  # monotonic

    async def settled_deliveries(self) -> int:
        async with self.reader.connect() as connection:
            return int(await connection.scalar(SETTLED_COUNT) or 0)


def run_bench(count: int, console: Console, scale_out: Settings | None = None) -> None:
    """The embedded default, then (with ``scale_out``) its configuration with 1, 2 and 4
    workers; one report."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if scale_out is not None:
        _check_scale_out(scale_out)
    runs: list[tuple[str, list[Phase]]] = []
    # The bench's own full collections (its heap is rich, httpx, SQLAlchemy) would hold back
    # its requests and show as the server's latency.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as workdir:
        directory = Path(workdir)
        db = directory / "bench.db"
        database_url = f"sqlite:///{db}"
        # Default settings, as users get them: no FRONTDESK_* from our environment, no config
        # file (the servers run in the empty temp dir), only the database, key and log level.
        with _processes(directory, database_url, [["serve"]]) as (port, key):
            runs.append(("embedded", _measure(port, key, database_url, count, console)))
        floor = asyncio.run(_floor(db, directory / "floor.db", count, console))
        for workers in WORKER_COUNTS if scale_out is not None else ():
            assert scale_out is not None
            name = f"scale-out, {workers} worker{'s' if workers > 1 else ''}"
            console.print(f"[bold]{name}[/bold]")
            with _fresh_postgres(scale_out.database.url) as database_url:
                roles = [["api"], ["orchestrator"], *(["worker"] for _ in range(workers))]
                with _processes(directory, database_url, roles, scale_out) as (port, key):
                    runs.append((name, _measure(port, key, database_url, count, console)))
    _report(console, runs, *floor)


def _check_scale_out(settings: Settings) -> None:
    if not settings.database.url.startswith("postgresql"):
        raise ValueError("bench --config: database.url must be a PostgreSQL URL")
    if not settings.transport.is_kafka:
        raise ValueError('bench --config: transport.url must be "kafka://..."')


@contextlib.contextmanager
def _fresh_postgres(url: str) -> Iterator[str]:
    """A new database beside the configured one, dropped afterwards."""
    name = f"frontdesk_bench_{secrets.token_hex(6)}"
    server = url.rsplit("/", 1)[0]

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def _processes(
    directory: Path,
    database_url: str,
    roles: list[list[str]],
    scale_out: Settings | None = None,
) -> Iterator[tuple[int, str]]:
    """The database migrated, then one process per role; the first serves HTTP. Yields its
    port and an admin key. A scale-out run gets topics, consumer groups and Redis keys of its
    own."""
    key = f"fd_{secrets.token_hex(24)}"
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env |= {"FRONTDESK_DATABASE_URL": database_url, "FRONTDESK_ADMIN_KEY": key}
    env["FRONTDESK_LOG_LEVEL"] = "warning"
    if scale_out is not None:
        run = f"bench-{secrets.token_hex(4)}"
        env |= {
            "FRONTDESK_TRANSPORT": scale_out.transport.url,
            "FRONTDESK_TRANSPORT__PARTITIONS": str(scale_out.transport.partitions),
            "FRONTDESK_TRANSPORT__TOPIC_PREFIX": f"{run}.",
            "FRONTDESK_TRANSPORT__CONSUMER_GROUP": run,
            "FRONTDESK_TRANSPORT__SESSION_TIMEOUT_MS": str(scale_out.transport.session_timeout_ms),
            "FRONTDESK_TRANSPORT__HEARTBEAT_INTERVAL_MS": str(
                scale_out.transport.heartbeat_interval_ms
            ),
            "FRONTDESK_REDIS_URL": scale_out.redis.url,
            "FRONTDESK_REDIS__KEY_PREFIX": f"{run}:",
        }
    command = [sys.executable, "-m", "frontdesk"]
    servers: list[subprocess.Popen[bytes]] = []
    with (directory / "server.log").open("w+b") as log:
        try:
            # Our own interpreter and fixed arguments: nothing from outside reaches the command.
            migrating = subprocess.run(  # noqa: S603
                [*command, "migrate"], env=env, cwd=directory, stdout=log, stderr=log
            )
            if migrating.returncode != 0:
                raise RuntimeError("frontdesk migrate failed")
            for index, role in enumerate(roles):
                port_option = ["--port", str(port)] if index == 0 else []
                servers.append(
                    subprocess.Popen(  # noqa: S603
                        [*command, *role, *port_option],
                        env=env,
                        cwd=directory,
                        stdout=log,
                        stderr=log,
                    )
                )
            yield port, key
        except Exception:
            log.seek(0)
            print("server log (tail):", log.read()[-3000:].decode(errors="replace"))
            raise
        finally:
            for server in servers:
                _stop(server)


def _measure(port: int, key: str, database_url: str, count: int, console: Console) -> list[Phase]:
    return asyncio.run(_server_phases(port, key, database_url, count, console))


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _server_phases(
    port: int, key: str, database_url: str, count: int, console: Console
) -> list[Phase]:
    deadline = time.monotonic() + BUDGET_SECONDS
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        await _wait_ready(client)
        user = {"email": "bench@example.com", "name": "Bench"}
        (await client.put("/v1/users/bench", content=orjson.dumps(user))).raise_for_status()
        (await client.put("/v1/templates/bench", content=orjson.dumps(TEMPLATE))).raise_for_status()
        engines = create_engines(database_url)
        try:
            with _progress(console) as progress:
                run = Run(client, engines.reader, progress, deadline)
                full = await _phase(run, "full load", _bodies("full", count, BATCH), count, None)
                if full.timed_out:
                    return [full]  # its backlog would spoil the half-load latencies
                rate = full.delivered / full.deliver_seconds / 2
                total = min(count // 2, int(rate * HALF_SECONDS)) // HALF_BATCH * HALF_BATCH
                total = max(total, HALF_BATCH)
                bodies = _bodies("half", total, HALF_BATCH)
                return [full, await _phase(run, "half load", bodies, total, rate)]
        finally:
            await engines.dispose()


async def _wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the server was not ready within 60 s")


def _bodies(prefix: str, total: int, size: int) -> list[bytes]:
    """Encoded before the clock starts, so the client's own JSON work is not on the books.
    Channels are left out: the default is every channel of the template."""
    items = [
        {"event_id": f"{prefix}-{n}", "user_id": "bench", "template": "bench", "payload": {"n": n}}
        for n in range(total)
    ]
    return [orjson.dumps({"notifications": items[i : i + size]}) for i in range(0, total, size)]


async def _post(run: Run, body: bytes, task: TaskID) -> list[str]:
    response = await run.client.post("/v1/notifications/batch", content=body)
    response.raise_for_status()
    results = orjson.loads(response.content)["results"]
    rejected = [r for r in results if r["status"] != "accepted"]
    if rejected:
        raise RuntimeError(f"{len(rejected)} notifications rejected: {rejected[0]['error']}")
    run.progress.advance(task, len(results))
    return [r["id"] for r in results]


async def _phase(run: Run, name: str, bodies: list[bytes], total: int, rate: float | None) -> Phase:
    """Send every batch, wait (bounded) for every delivery to be final, measure from the rows.

    With no rate, IN_FLIGHT lanes each send their next batch when the last is answered (closed
    loop: full load). With a rate, batches leave on schedule whether or not earlier ones were
    answered (open loop), so a slow answer shows as latency instead of lowering the load."""
    sending = run.progress.add_task(f"{name}: sending", total=total)
    before, queue = await run.settled_deliveries(), list(bodies)

    async def lane() -> list[str]:
        sent: list[str] = []
        while queue and time.monotonic() < run.deadline:
            sent += await _post(run, queue.pop(0), sending)
        return sent

    loop = asyncio.get_running_loop()
    started, origin = time.time(), loop.time()
    if rate is None:
        posts = [asyncio.create_task(lane()) for _ in range(IN_FLIGHT)]
    else:
        posts = []
        for n, body in enumerate(bodies):
            if time.monotonic() > run.deadline:
                break
            await asyncio.sleep(max(0.0, origin + n * HALF_BATCH / rate - loop.time()))
            posts.append(asyncio.create_task(_post(run, body, sending)))
    ids = [i for batch in await asyncio.gather(*posts) for i in batch]
    accept_seconds = time.time() - started

    expected = len(ids) * CHANNELS
    settling = run.progress.add_task(f"{name}: settling deliveries", total=expected)
    until = min(time.monotonic() + SETTLE_SECONDS, run.deadline)
    while (done := await run.settled_deliveries() - before) < expected and time.monotonic() < until:
        run.progress.update(settling, completed=done)
        await asyncio.sleep(0.1)
    run.progress.update(settling, completed=done)
    ms, last, undelivered = await _latencies(run.reader, set(ids))
    # With nothing delivered there is no rate: an infinite duration reads as 0/s.
    deliver_seconds = last - started if ms else math.inf
    p50, p99 = _percentile(ms, 0.5), _percentile(ms, 0.99)
    sent, delivered = len(ids), len(ms)
    return Phase(
        name, total, sent, accept_seconds, delivered, undelivered, deliver_seconds, p50, p99
    )


async def _latencies(reader: AsyncEngine, ids: set[str]) -> tuple[list[float], float, int]:
    """Of the notifications in ``ids``: accept→delivered in ms for each whose deliveries all went
    out (sorted), when the last of them went out (Unix time), and how many ended otherwise."""
    latencies, last, undelivered = [], 0.0, 0
    async with reader.connect() as connection:
        rows = (await connection.execute(SETTLED_TIMES)).all()
    for notification_id, created, settled, final, sent in rows:
        if notification_id in ids and final == CHANNELS and sent < CHANNELS:
            undelivered += 1
        elif notification_id in ids and final == CHANNELS:
            done = settled.timestamp()
            latencies.append((done - created.timestamp()) * 1000)
            last = max(last, done)
    return sorted(latencies), last, undelivered


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


# The notification and every table with rows per notification: what the floor writes.
FLOOR_TABLES = [t.notifications] + [x for x in t.metadata.sorted_tables if "notification_id" in x.c]
# Notifications that went all the way (each delivery sent), so their rows are complete.
_DELIVERED = (
    select(t.deliveries.c.notification_id)
    .where(t.deliveries.c.status.in_(["sent", "delivered", "read"]))
    .group_by(t.deliveries.c.notification_id)
    .having(func.count() == CHANNELS)
    .order_by(t.deliveries.c.notification_id)
)


async def _floor(
    source: Path, target: Path, count: int, console: Console
) -> tuple[dict[str, int], float]:
    """The very rows the pipeline wrote for ``count`` delivered notifications, read back from
    the bench database and inserted into a fresh one, 1,000 notifications' rows per commit:
    the driver's own statements and values, handed to SQLite (the stdlib module, the server's
    pragmas) by executemany. Only those transactions are timed: what the database alone costs.
    Returns the rows written per table and the seconds spent in those transactions."""
    await migrate(f"sqlite:///{target}")
    reading = create_engines(f"sqlite:///{source}")
    driver = DriverStatements("sqlite")
    writing = sqlite3.connect(target, isolation_level=None)
    for pragma in sqlite_pragmas():
        writing.execute(f"PRAGMA {pragma}")
    rows, seconds = dict.fromkeys((table.name for table in FLOOR_TABLES), 0), 0.0
    try:
        async with reading.reader.connect() as source_db:
            ids = list(await source_db.scalars(_DELIVERED.limit(count)))
            with _progress(console) as progress:
                task = progress.add_task("floor: plain batched inserts", total=len(ids))
                for chunk in (ids[i : i + BATCH] for i in range(0, len(ids), BATCH)):
                    statements = []
                    for table in FLOOR_TABLES:
                        if table_rows := await _rows(source_db, table, chunk):
                            statements.append(driver.prepare_insert(table, table_rows))
                            rows[table.name] += len(table_rows)
                    began = time.perf_counter()
                    writing.execute("BEGIN IMMEDIATE")
                    for statement, values in statements:
                        writing.executemany(statement, values)
                    writing.execute("COMMIT")
                    seconds += time.perf_counter() - began
                    progress.advance(task, len(chunk))
    finally:
        writing.close()
        await reading.dispose()
    return rows, seconds


async def _rows(
    source_db: AsyncConnection, table: SqlTable, ids: list[str]
) -> list[dict[str, Any]]:
    owner = table.c.id if table is t.notifications else table.c.notification_id
    result = await source_db.execute(select(table).where(owner.in_(ids)))
    return [dict(row) for row in result.mappings()]


def _progress(console: Console) -> Progress:
    columns = Progress.get_default_columns()[0], BarColumn(), MofNCompleteColumn()  # description
    return Progress(*columns, TimeElapsedColumn(), console=console)


def _report(
    console: Console, runs: list[tuple[str, list[Phase]]], rows: dict[str, int], seconds: float
) -> None:
    table = Table(
        "configuration", "phase", "notifications", "accepted/s", "delivered/s", "p50 ms", "p99 ms"
    )
    for name, phases in runs:
        for phase in phases:
            table.add_row(name, *phase.row())
    count, total = rows["notifications"], sum(rows.values())
    floor_rate = count / seconds
    table.add_row("embedded", "floor", f"{count:,}", "—", f"{floor_rate:,.0f}", "—", "—")
    console.width = max(console.width, 110)  # a log file's 80 columns would cut the names
    console.print(table)
    each = ", ".join(f"{name} {n / count:g}" for name, n in rows.items())
    console.print(
        f"floor: plain batched inserts of the same rows into SQLite, {total:,} in {seconds:.2f} s"
        f" = {total / seconds:,.0f} rows/s = {floor_rate:,.0f} notifications/s; "
        f"rows per notification: {each}"
    )
    phases = runs[0][1]
    full, half = phases[0], (phases[1] if len(phases) > 1 else None)
    end_to_end = full.delivered / full.deliver_seconds
    share = end_to_end / floor_rate
    console.print(f"embedded end to end: {end_to_end:,.0f}/s = {share:.1%} of the floor")
    marks = {True: "[green]✔ pass[/green]", False: "[red]✘ fail[/red]"}
    rate_ok = end_to_end >= TARGET_RATE and full.passed
    console.print(
        f"target: ≥ {TARGET_RATE:,.0f}/s end to end ({TARGET_RATE / floor_rate:.0%} of the floor):"
        f" {end_to_end:,.0f}/s",
        marks[rate_ok],
    )
    p99 = f"{half.p99_ms:,.1f} ms" if half else "not measured (full load did not settle)"
    p99_ok = half is not None and half.passed and half.p99_ms < TARGET_P99_MS
    console.print(f"target: p99 < {TARGET_P99_MS:.0f} ms at half load: {p99}", marks[p99_ok])
