"""How many SMS segments a text costs, and in which encoding it travels (GSM 03.38).

A text made only of GSM-7 characters is sent 7 bits a character: 160 characters fit one SMS,
153 fit each part of a longer one (the user data header that joins the parts takes the rest).
The GSM-7 extension table's characters are an escape plus a character, so they count two.
Any other character sends the whole text as UCS-2 (UTF-16): 70 code units in one SMS, 67 in
each part; a character outside the Basic Multilingual Plane (most emoji) takes two.
A two-unit character is never split between parts, so a part may end one unit short.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class SmsEncoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentCapacity:
    """Units (septets or UTF-16 code units) a message holds alone, and per part once split."""

    single: int
    per_part: int


CAPACITY = {
    SmsEncoding.GSM7: SegmentCapacity(single=160, per_part=153),
    SmsEncoding.UCS2: SegmentCapacity(single=70, per_part=67),
}


@dataclass(frozen=True, slots=True)
class SmsSegments:
    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def encoding_of(text: str) -> SmsEncoding:
    if all(character in GSM7_BASIC or character in GSM7_EXTENSION for character in text):
        return SmsEncoding.GSM7
    return SmsEncoding.UCS2


def count_segments(text: str) -> SmsSegments:
    """The encoding, length in units and number of segments that sending ``text`` costs."""
    encoding = encoding_of(text)
    costs = [_units(character, encoding) for character in text]
    total = sum(costs)
    capacity = CAPACITY[encoding]
    if total <= capacity.single:
        # An empty text is still one message.
        return SmsSegments(encoding, total, 1)
    segments, filled = 1, 0
    for cost in costs:
        if filled + cost > capacity.per_part:
            segments, filled = segments + 1, 0
        filled += cost
    return SmsSegments(encoding, total, segments)


def _units(character: str, encoding: SmsEncoding) -> int:
    if encoding is SmsEncoding.GSM7:
        return 2 if character in GSM7_EXTENSION else 1
    return 2 if ord(character) > 0xFFFF else 1
