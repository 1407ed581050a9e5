"""Signed, expiring tokens: what verifies, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from frontdesk.core.tokens import InvalidToken, sign_token, verify_token

SECRET = "server-secret"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)


def inbox_token(subject: str = "usr_ana", expires_at: datetime = EXPIRES) -> str:
    return sign_token(SECRET, "inbox", subject, expires_at)


def test_a_signed_token_verifies_to_its_subject() -> None:
    assert verify_token(SECRET, "inbox", inbox_token("usr_ana"), NOW) == "usr_ana"


def test_a_body_rewritten_for_another_subject_is_refused() -> None:
    _, signature = inbox_token("usr_ana").split(".")
    claims = {"p": "inbox", "s": "usr_admin", "e": int(EXPIRES.timestamp())}
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(InvalidToken):
        verify_token(SECRET, "inbox", f"{forged_body}.{signature}", NOW)


def test_a_changed_signature_is_refused() -> None:
    body, signature = inbox_token().split(".")
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]

    with pytest.raises(InvalidToken):
        verify_token(SECRET, "inbox", f"{body}.{changed}", NOW)


@given(st.data(), st.characters())
def test_any_single_changed_character_is_refused(data: st.DataObject, replacement: str) -> None:
    token = inbox_token()
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    assume(token[position] != replacement)
    changed = token[:position] + replacement + token[position + 1 :]

    with pytest.raises(InvalidToken):
        verify_token(SECRET, "inbox", changed, NOW)


@pytest.mark.parametrize("token", ["", "no-signature", ".", "only-body.", ".only-signature"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, "inbox", token, NOW)


def test_a_token_for_another_purpose_is_refused() -> None:
    unsubscribe = sign_token(SECRET, "unsubscribe", "usr_ana", EXPIRES)

    with pytest.raises(InvalidToken, match="unsubscribe"):
        verify_token(SECRET, "inbox", unsubscribe, NOW)


def test_a_token_is_refused_at_the_instant_it_expires() -> None:
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, "inbox", inbox_token(), EXPIRES)


def test_a_token_is_refused_after_it_expires() -> None:
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, "inbox", inbox_token(), EXPIRES + timedelta(days=1))


def test_a_token_still_verifies_one_second_before_it_expires() -> None:
    subject = verify_token(SECRET, "inbox", inbox_token(), EXPIRES - timedelta(seconds=1))

    assert subject == "usr_ana"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    foreign = sign_token("another-secret", "inbox", "usr_ana", EXPIRES)

    with pytest.raises(InvalidToken):
        verify_token(SECRET, "inbox", foreign, NOW)


@given(st.text(), st.text(), st.integers(min_value=1, max_value=10**8))
def test_any_subject_and_purpose_verify_before_expiry(
    subject: str, purpose: str, seconds_left: int
) -> None:
    token = sign_token(SECRET, purpose, subject, NOW + timedelta(seconds=seconds_left))

    assert verify_token(SECRET, purpose, token, NOW) == subject
