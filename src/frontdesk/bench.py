"""The throughput benchmark: the real server end to end, against plain inserts on the same database.

``frontdesk bench`` starts ``frontdesk serve`` with default settings on a fresh SQLite file, pushes
notifications through the batch API at full load and then at half the rate it reached, and reads
the outcome from the database file: accepted/s, delivered/s end to end, and accept→delivered
latency. It then writes the same rows per notification into a second fresh database with plain
batched inserts: the floor, what the database alone costs, that the pipeline is measured against.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Table as SqlTable
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.store import tables as t
from frontdesk.store.driver import DriverStatements
from frontdesk.store.engine import create_engines, migrate

BATCH = 1_000  # the API's largest batch; also the floor's notifications per commit
IN_FLIGHT = 2
HALF_BATCH = 100  # small batches on a fixed schedule, so half load arrives evenly
HALF_SECONDS = 8.0
SETTLE_SECONDS = 60.0
BUDGET_SECONDS = 80.0  # both server phases; start-up, the floor and the report fit in 2 minutes
TARGET_RATE, TARGET_P99_MS = 5_000.0, 250.0
CHANNELS = 2  # the bench template has email and in_app
TEMPLATE = {
    "channels": {
        "email": {"subject": "Order {{ payload.n }}", "html": "<p>{{ user.name }}: sent</p>"},
        "in_app": {"title": "Order {{ payload.n }}", "body": "It has shipped."},
    }
}
# Final: nothing more will happen to the delivery ('sent', 'failed', 'skipped', 'dead', ...).
SETTLED_COUNT = (
    "SELECT count(*) FROM deliveries WHERE status NOT IN ('queued', 'deferred', 'sending')"
)
SETTLED_TIMES = (  # per notification: created, last settled, deliveries final, delivered
    "SELECT n.id, n.created_at, max(d.updated_at), count(*), "
    "sum(d.status IN ('sent', 'delivered', 'read')) FROM notifications n JOIN deliveries d "
    "ON d.notification_id = n.id WHERE d.status NOT IN ('queued', 'deferred', 'sending') "
    "GROUP BY n.id"
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
    reader: sqlite3.Connection  # read-only, on the server's file: the bench adds nothing to it
    progress: Progress
    deadline: float  # monotonic

    def settled_deliveries(self) -> int:
        return int(self.reader.execute(SETTLED_COUNT).fetchone()[0])


def run_bench(count: int, console: Console) -> None:
    if count < 1:
        raise ValueError("count must be at least 1")
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as workdir:
        db, key = Path(workdir) / "bench.db", f"fd_{secrets.token_hex(24)}"
        with socket.socket() as probe:  # a free loopback port
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        # Default settings, as users get them: no FRONTDESK_* from our environment, no config
        # file (the server runs in the empty temp dir), only the database, key and log level.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        env |= {"FRONTDESK_DATABASE_URL": f"sqlite:///{db}", "FRONTDESK_ADMIN_KEY": key}
        env["FRONTDESK_LOG_LEVEL"] = "warning"
        argv = [sys.executable, "-m", "frontdesk", "serve", "--port", str(port)]
        with (Path(workdir) / "server.log").open("w+b") as log:
            # Our own interpreter and a fixed argv: nothing from outside reaches the command.
            server = subprocess.Popen(argv, env=env, cwd=workdir, stdout=log, stderr=log)  # noqa: S603
            try:
                phases = asyncio.run(_server_phases(port, key, db, count, server, console))
            except Exception:
                log.seek(0)
                console.print("server log (tail):", log.read()[-3000:].decode(errors="replace"))
                raise
            finally:
                _stop(server)
        floor = asyncio.run(_floor(db, Path(workdir) / "floor.db", count, console))
    _report(console, phases, *floor)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _server_phases(
    port: int, key: str, db: Path, count: int, server: subprocess.Popen[bytes], console: Console
) -> list[Phase]:
    deadline = time.monotonic() + BUDGET_SECONDS
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        await _wait_ready(client, server)
        user = {"email": "bench@example.com", "name": "Bench"}
        (await client.put("/v1/users/bench", content=orjson.dumps(user))).raise_for_status()
        (await client.put("/v1/templates/bench", content=orjson.dumps(TEMPLATE))).raise_for_status()
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        try:
            with _progress(console) as progress:
                run = Run(client, reader, progress, deadline)
                full = await _phase(run, "full load", _bodies("full", count, BATCH), count, None)
                if full.timed_out:
                    return [full]  # its backlog would spoil the half-load latencies
                rate = full.delivered / full.deliver_seconds / 2
                total = min(count // 2, int(rate * HALF_SECONDS)) // HALF_BATCH * HALF_BATCH
                total = max(total, HALF_BATCH)
                bodies = _bodies("half", total, HALF_BATCH)
                return [full, await _phase(run, "half load", bodies, total, rate)]
        finally:
            reader.close()


async def _wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited at start (code {server.returncode})")
        with contextlib.suppress(httpx.TransportError):  # not listening yet
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the server was not ready within 30 s")


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
    before, queue = run.settled_deliveries(), list(bodies)

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
    while (done := run.settled_deliveries() - before) < expected and time.monotonic() < until:
        run.progress.update(settling, completed=done)
        await asyncio.sleep(0.1)
    run.progress.update(settling, completed=done)
    ms, last, undelivered = _latencies(run.reader, set(ids))
    # With nothing delivered there is no rate: an infinite duration reads as 0/s.
    deliver_seconds = last - started if ms else math.inf
    p50, p99 = _percentile(ms, 0.5), _percentile(ms, 0.99)
    sent, delivered = len(ids), len(ms)
    return Phase(
        name, total, sent, accept_seconds, delivered, undelivered, deliver_seconds, p50, p99
    )


def _stamp(text: str) -> float:
    # SQLAlchemy keeps times on SQLite as naive UTC text: '2026-11-24 15:29:39.468367'.
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _latencies(reader: sqlite3.Connection, ids: set[str]) -> tuple[list[float], float, int]:
    """Of the notifications in ``ids``: accept→delivered in ms for each whose deliveries all went
    out (sorted), when the last of them went out (Unix time), and how many ended otherwise."""
    latencies, last, undelivered = [], 0.0, 0
    for notification_id, created, settled, final, sent in reader.execute(SETTLED_TIMES):
        if notification_id in ids and final == CHANNELS and sent < CHANNELS:
            undelivered += 1
        elif notification_id in ids and final == CHANNELS:
            done = _stamp(settled)
            latencies.append((done - _stamp(created)) * 1000)
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
    the bench database and inserted into a fresh one, 1,000 notifications' rows per commit,
    by the driver's executemany with plain tuples: the fastest way the store knows.
    Returns the rows written per table and the seconds spent in those transactions (reading
    them back is not counted)."""
    await migrate(f"sqlite:///{target}")
    reading = create_engines(f"sqlite:///{source}")
    writing = create_engines(f"sqlite:///{target}")  # the server's: WAL, synchronous=FULL
    driver = DriverStatements("sqlite")
    rows, seconds = dict.fromkeys((table.name for table in FLOOR_TABLES), 0), 0.0
    try:
        async with reading.reader.connect() as source_db:
            ids = list(await source_db.scalars(_DELIVERED.limit(count)))
            with _progress(console) as progress:
                task = progress.add_task("floor: plain batched inserts", total=len(ids))
                for chunk in (ids[i : i + BATCH] for i in range(0, len(ids), BATCH)):
                    batch = {table: await _rows(source_db, table, chunk) for table in FLOOR_TABLES}
                    began = time.perf_counter()
                    async with writing.writer.begin() as connection:
                        for table, table_rows in batch.items():
                            await driver.insert(connection, table, table_rows)
                            rows[table.name] += len(table_rows)
                    seconds += time.perf_counter() - began
                    progress.advance(task, len(chunk))
    finally:
        await reading.dispose()
        await writing.dispose()
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


def _report(console: Console, phases: list[Phase], rows: dict[str, int], seconds: float) -> None:
    table = Table("phase", "notifications", "accepted/s", "delivered/s", "p50 ms", "p99 ms")
    for phase in phases:
        table.add_row(*phase.row())
    count, total = rows["notifications"], sum(rows.values())
    floor_rate = count / seconds
    table.add_row("floor", f"{count:,}", "—", f"{floor_rate:,.0f}", "—", "—")
    console.print(table)
    each = ", ".join(f"{name} {n / count:g}" for name, n in rows.items())
    console.print(
        f"floor: plain batched inserts of the same rows, {total:,} in {seconds:.2f} s = "
        f"{total / seconds:,.0f} rows/s = {floor_rate:,.0f} notifications/s; "
        f"rows per notification: {each}"
    )
    full, half = phases[0], (phases[1] if len(phases) > 1 else None)
    end_to_end = full.delivered / full.deliver_seconds
    share = end_to_end / floor_rate
    console.print(f"pipeline end to end: {end_to_end:,.0f}/s = {share:.1%} of the floor")
    marks = {True: "[green]✔ pass[/green]", False: "[red]✘ fail[/red]"}
    rate_ok = end_to_end >= TARGET_RATE and full.passed
    console.print(f"target: ≥ {TARGET_RATE:,.0f}/s end to end: {end_to_end:,.0f}/s", marks[rate_ok])
    p99 = f"{half.p99_ms:,.1f} ms" if half else "not measured (full load did not settle)"
    p99_ok = half is not None and half.passed and half.p99_ms < TARGET_P99_MS
    console.print(f"target: p99 < {TARGET_P99_MS:.0f} ms at half load: {p99}", marks[p99_ok])
