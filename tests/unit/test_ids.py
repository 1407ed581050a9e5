"""Typed, prefixed, time-ordered ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.ids import Prefix, has_prefix, new_id

HEX = set("0123456789abcdef")
MILLIS = st.integers(min_value=0, max_value=2**48 - 2)


@pytest.mark.parametrize("prefix", list(Prefix))
def test_an_id_is_its_prefix_an_underscore_and_32_hex_digits(prefix: Prefix) -> None:
    value = new_id(prefix)

    head, _, body = value.partition("_")
    assert head == prefix.value
    assert len(body) == 32
    assert set(body) <= HEX


def test_two_ids_made_in_the_same_millisecond_differ() -> None:
    assert new_id(Prefix.DELIVERY, at_ms=1_700_000_000_000) != new_id(
        Prefix.DELIVERY, at_ms=1_700_000_000_000
    )


@given(MILLIS, MILLIS)
def test_an_id_made_later_sorts_after_one_made_earlier(first_ms: int, second_ms: int) -> None:
    earlier_ms, later_ms = sorted((first_ms, second_ms))
    if earlier_ms == later_ms:
        later_ms += 1

    earlier = new_id(Prefix.NOTIFICATION, at_ms=earlier_ms)
    later = new_id(Prefix.NOTIFICATION, at_ms=later_ms)

    assert earlier < later


def test_ids_made_one_millisecond_apart_sort_in_creation_order() -> None:
    made = [new_id(Prefix.INBOX_ITEM, at_ms=1_700_000_000_000 + step) for step in range(500)]

    assert sorted(made) == made


@pytest.mark.parametrize("prefix", list(Prefix))
def test_an_id_has_its_own_prefix(prefix: Prefix) -> None:
    assert has_prefix(new_id(prefix), prefix)


def test_an_id_does_not_have_another_prefix() -> None:
    assert not has_prefix(new_id(Prefix.NOTIFICATION), Prefix.DELIVERY)


@pytest.mark.parametrize(
    "value",
    ["ntf_", "ntf", "ntf_01a2", "ntf_" + "0" * 33, "ntf" + "0" * 33, "dlv_" + "0" * 32],
)
def test_a_value_of_the_wrong_shape_does_not_have_the_prefix(value: str) -> None:
    assert not has_prefix(value, Prefix.NOTIFICATION)
