"""Database engines for SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg), and schema migration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from frontdesk.core.urgency import is_urgent
from frontdesk.errors import ConfigError
from frontdesk.store.write_gate import WriteGate

_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class Engines:
    """SQLite allows one writer at a time: a gate serialises our writers in-process (no
    busy-waiting, urgent work first) on a pool of one, while readers use their own connections
    under WAL. PostgreSQL uses one pool for both and needs no gate."""

    writer: AsyncEngine
    reader: AsyncEngine
    dialect: str
    gate: WriteGate | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, taken in turn: urgent work (see core.urgency) goes first."""
        if self.gate is None:
            async with self.writer.begin() as connection:
                yield connection
            return
        async with self.gate.turn(urgent=is_urgent()), self.writer.begin() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def async_url(url: str) -> str:
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}.get(
        parsed.drivername, parsed.drivername
    )
    if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ConfigError(
            f"database.url: unsupported database {parsed.drivername!r}; "
            "use sqlite:///path or postgresql://user@host/db"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# orjson: JSON columns (payloads, rendered content) are on every hot path.
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def create_engines(url: str, *, sqlite_synchronous: str = "FULL") -> Engines:
    full_url = async_url(url)
    if full_url.startswith("sqlite"):
        writer = create_async_engine(
            full_url, pool_size=1, max_overflow=0, pool_timeout=300, **_JSON
        )
        reader = create_async_engine(full_url, pool_size=4, max_overflow=4, **_JSON)
        for engine in (writer, reader):
            _configure_sqlite(engine, sqlite_synchronous, immediate=engine is writer)
        return Engines(writer=writer, reader=reader, dialect="sqlite", gate=WriteGate())
    engine = create_async_engine(
        full_url, pool_size=10, max_overflow=10, pool_pre_ping=True, **_JSON
    )
    return Engines(writer=engine, reader=engine, dialect="postgresql")


def sqlite_pragmas(synchronous: str = "FULL") -> tuple[str, ...]:
    """What every connection to a SQLite store is set to."""
    return (
        "journal_mode=WAL",
        f"synchronous={synchronous}",
        "busy_timeout=30000",
        "cache_size=-16384",
        "temp_store=MEMORY",
    )


def _configure_sqlite(engine: AsyncEngine, synchronous: str, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_pragmas(synchronous):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a read-then-write transaction can then never
        # fail to upgrade its lock when another process (the CLI, say) writes at the same time.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


async def migrate(url: str) -> None:
    """Create or upgrade the schema to the newest revision."""
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
