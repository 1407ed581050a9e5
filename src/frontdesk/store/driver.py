"""Hot-path statements handed to the driver as plain tuples.

SQLAlchemy's per-row parameter processing costs more than the database's own insert (about
55,000 rows/s against 150,000 on SQLite here). At thousands of notifications a second, some
fifteen rows each, the hot paths write through ``exec_driver_sql``: the statement text is built
once per table and columns, and values are converted by a few cheap functions below. Reads and
everything off the hot path stay in SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, overload

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from frontdesk.store.tables import UtcDateTime

Convert = Callable[[Any], Any]
_TIME_MEMO_SIZE = 4096


def _same(value: Any) -> Any:
    return value


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _sqlite_text(value: datetime) -> str:
    """The text SQLAlchemy itself stores for SQLite DATETIME: naive UTC, microseconds."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


class DriverStatements:
    def __init__(self, dialect: str) -> None:
        self._sqlite = dialect == "sqlite"
        self.time: Convert = self._sqlite_time if self._sqlite else _same
        self._time_texts: dict[datetime, str] = {}
        self._times: dict[str, datetime] = {}
        self._inserts: dict[
            tuple[str, tuple[str, ...], bool], tuple[str, list[tuple[int, Convert]]]
        ] = {}
        self._texts: dict[str, str] = {}

    def _sqlite_time(self, value: datetime | None) -> str | None:
        # A batch stamps most of its rows with a few instants, and formatting one costs twenty
        # times a look-up: each is formatted (and parsed, below) once, in a memo kept small.
        if value is None:
            return None
        text = self._time_texts.get(value)
        if text is None:
            if len(self._time_texts) >= _TIME_MEMO_SIZE:
                self._time_texts.clear()
            text = self._time_texts[value] = _sqlite_text(value)
        return text

    @overload
    def parse_time(self, value: None) -> None: ...
    @overload
    def parse_time(self, value: str | datetime) -> datetime: ...
    def parse_time(self, value: str | datetime | None) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        parsed = self._times.get(value)
        if parsed is None:
            if len(self._times) >= _TIME_MEMO_SIZE:
                self._times.clear()
            parsed = self._times[value] = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return parsed

    @staticmethod
    def parse_json(value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str | bytes) else value

    def sql(self, text: str) -> str:
        """``?`` placeholders, numbered for asyncpg (``$1``) on PostgreSQL."""
        if self._sqlite:
            return text
        numbered = self._texts.get(text)
        if numbered is None:
            parts = text.split("?")
            numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
            self._texts[text] = numbered
        return numbered

    async def insert(
        self,
        connection: AsyncConnection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        ignore_conflicts: bool = False,
    ) -> None:
        if rows:
            await connection.exec_driver_sql(*self.prepare_insert(table, rows, ignore_conflicts))

    def prepare_insert(
        self, table: Table, rows: Sequence[Mapping[str, Any]], ignore_conflicts: bool = False
    ) -> tuple[str, list[tuple[Any, ...]]]:
        """The statement and the rows as the driver takes them (``rows`` not empty)."""
        columns = tuple(rows[0])
        statement, converters = self._insert_statement(table, columns, ignore_conflicts)
        # Most columns pass as they are: take the row's values in one call and convert only
        # the times and JSON in place.
        values_of = itemgetter(*columns)
        converted = []
        for row in rows:
            values = list(values_of(row)) if len(columns) > 1 else [values_of(row)]
            for index, convert in converters:
                values[index] = convert(values[index])
            converted.append(tuple(values))
        return statement, converted

    def _insert_statement(
        self, table: Table, columns: tuple[str, ...], ignore_conflicts: bool
    ) -> tuple[str, list[tuple[int, Convert]]]:
        """The statement, and the columns whose values need converting, by position."""
        key = (table.name, columns, ignore_conflicts)
        cached = self._inserts.get(key)
        if cached is None:
            placeholders = ", ".join("?" * len(columns))
            text = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"
            if ignore_conflicts:
                text += " ON CONFLICT DO NOTHING"
            converters = [
                (index, self._converter(table, name)) for index, name in enumerate(columns)
            ]
            converting = [(index, convert) for index, convert in converters if convert is not _same]
            cached = (self.sql(text), converting)
            self._inserts[key] = cached
        return cached

    def _converter(self, table: Table, name: str) -> Convert:
        column_type = table.c[name].type
        if isinstance(column_type, UtcDateTime):
            return self.time
        if isinstance(column_type, JSON):
            return _json_text
        return _same

    async def execute_many(
        self, connection: AsyncConnection, text: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            await connection.exec_driver_sql(self.sql(text), list(rows))

    async def fetch(
        self, connection: AsyncConnection, text: str, params: Sequence[Any]
    ) -> list[Sequence[Any]]:
        result = await connection.exec_driver_sql(self.sql(text), tuple(params))
        return list(result.all())
