"""How frontdesk writes an instant wherever someone reads it: API answers, webhook payloads."""

from __future__ import annotations

from datetime import datetime
from typing import overload


@overload
def rfc3339(value: datetime) -> str: ...
@overload
def rfc3339(value: None) -> None: ...
def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 UTC to the millisecond, ``2026-11-24T23:00:00.123Z``: one fixed width, so the
    times of one answer line up and compare as text."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
