"""SMS segment counting: GSM-7 or UCS-2, 160/153 and 70/67 units, escapes counting double."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.sms_segments import (
    CAPACITY,
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsEncoding,
    count_segments,
)

gsm7_basic_texts = st.text(alphabet=sorted(GSM7_BASIC), max_size=1000)
gsm7_texts = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=1000)
# Cyrillic, Greek lower case, CJK: in the Basic Multilingual Plane, none of it GSM-7.
not_gsm7_bmp = st.sampled_from("жщюαβγ中文字ąśćł")
bmp_texts_with_one_non_gsm7 = st.tuples(
    st.text(alphabet=[*sorted(GSM7_BASIC), "ж", "中"], max_size=500),
    not_gsm7_bmp,
    st.text(alphabet=sorted(GSM7_BASIC), max_size=500),
).map("".join)


def expected_segments(units: int, single: int, per_part: int) -> int:
    return 1 if units <= single else math.ceil(units / per_part)


@given(gsm7_basic_texts)
def test_gsm7_basic_text_costs_one_septet_a_character(text: str) -> None:
    counted = count_segments(text)

    assert counted.encoding is SmsEncoding.GSM7
    assert counted.units == len(text)
    assert counted.segments == expected_segments(len(text), 160, 153)


@given(gsm7_basic_texts, st.sampled_from(sorted(GSM7_EXTENSION)))
def test_extension_character_counts_double(text: str, escaped: str) -> None:
    counted = count_segments(text + escaped)

    assert counted.encoding is SmsEncoding.GSM7
    assert counted.units == len(text) + 2


@given(bmp_texts_with_one_non_gsm7)
def test_one_character_outside_gsm7_sends_the_whole_text_as_ucs2(text: str) -> None:
    counted = count_segments(text)

    assert counted.encoding is SmsEncoding.UCS2
    assert counted.units == len(text)
    assert counted.segments == expected_segments(len(text), 70, 67)


@given(st.text(max_size=800))
def test_every_part_fits_and_no_part_is_wasted(text: str) -> None:
    counted = count_segments(text)

    capacity = CAPACITY[counted.encoding]
    if counted.segments == 1:
        assert counted.units <= capacity.single
    else:
        # A part may end one unit short (a two-unit character is never split), no shorter.
        assert counted.units <= counted.segments * capacity.per_part
        assert counted.units > (counted.segments - 1) * (capacity.per_part - 1)


@given(gsm7_texts, gsm7_texts)
def test_a_longer_text_never_costs_fewer_segments(text: str, more: str) -> None:
    assert count_segments(text + more).segments >= count_segments(text).segments


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", SmsEncoding.GSM7, 0, 1),
        ("a" * 160, SmsEncoding.GSM7, 160, 1),
        ("a" * 161, SmsEncoding.GSM7, 161, 2),
        ("a" * 306, SmsEncoding.GSM7, 306, 2),
        ("a" * 307, SmsEncoding.GSM7, 307, 3),
        ("€" * 80, SmsEncoding.GSM7, 160, 1),
        ("€" * 81, SmsEncoding.GSM7, 162, 2),
        ("ж" * 70, SmsEncoding.UCS2, 70, 1),
        ("ж" * 71, SmsEncoding.UCS2, 71, 2),
        ("ж" * 134, SmsEncoding.UCS2, 134, 2),
        ("ж" * 135, SmsEncoding.UCS2, 135, 3),
        ("😀" * 35, SmsEncoding.UCS2, 70, 1),
        ("Your code is 1234 😀", SmsEncoding.UCS2, 20, 1),
    ],
)
def test_known_lengths(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    counted = count_segments(text)

    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, segments)


def test_an_escaped_character_is_not_split_between_parts() -> None:
    # 152 septets, then escapes: the first escape cannot take the part's last septet.
    text = "a" * 152 + "€" * 77

    counted = count_segments(text)

    assert counted.units == 306  # what two full parts could hold, were escapes splittable
    assert counted.segments == 3


def test_an_emoji_is_not_split_between_parts() -> None:
    # 66 code units, then surrogate pairs: the first pair cannot take the part's last unit.
    text = "ж" * 66 + "😀" * 34

    counted = count_segments(text)

    assert counted.units == 134  # what two full parts could hold, were pairs splittable
    assert counted.segments == 3
