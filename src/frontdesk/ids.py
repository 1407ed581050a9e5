"""Typed, prefixed, time-ordered ids: ``ntf_01a20e482e8c...``.

The 32-character body is 128 bits in hexadecimal: a 48-bit millisecond time, then 80 random
bits. Ids sort by creation time, so cursors and B-tree inserts stay cheap; hexadecimal is what
Python formats fastest, and ids are made a dozen times per notification.
"""

from __future__ import annotations

import random
import time
from enum import StrEnum


class Prefix(StrEnum):
    NOTIFICATION = "ntf"
    DELIVERY = "dlv"
    INBOX_ITEM = "inb"
    AUDIT = "aud"
    WEBHOOK_ENDPOINT = "whe"
    MESSAGE = "msg"
    API_KEY = "key"
    BROADCAST = "brd"


def new_id(prefix: Prefix, at_ms: int | None = None) -> str:
    """Ids name things; they are not secrets (every read is authorised), so the random part
    comes from the fast generator rather than the operating system's."""
    millis = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    return f"{prefix}_{(millis << 80) | random.getrandbits(80):032x}"


def has_prefix(value: str, prefix: Prefix) -> bool:
    return value.startswith(f"{prefix}_") and len(value) == len(prefix) + 33
