"""The receiver's side: frontdesk.webhooks.verify, its tolerance, its replay guard, its errors; and
the Standard Webhooks reference library accepting what frontdesk signs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from frontdesk.core.signatures import new_key_pair, new_symmetric_secret, signature_headers
from frontdesk.webhooks import (
    InvalidSecret,
    InvalidTimestamp,
    MissingHeader,
    NoMatchingSignature,
    ReplayedMessage,
    ReplayGuard,
    TimestampTooNew,
    TimestampTooOld,
    WebhookVerificationError,
    verify,
)

SECRET = new_symmetric_secret()
OTHER_SECRET = new_symmetric_secret()
SIGNED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BODY = b'{"type":"notification.sent","data":{"id":"ntf_1"}}'


def signed_headers(
    *secrets: str, webhook_id: str = "msg_1", at: datetime = SIGNED_AT, body: bytes = BODY
) -> dict[str, str]:
    return signature_headers(webhook_id, int(at.timestamp()), body, secrets or [SECRET])


def test_a_genuine_message_verifies() -> None:
    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT)


def test_the_body_may_be_given_as_text() -> None:
    verify(BODY.decode(), signed_headers(), SECRET, now=SIGNED_AT)


def test_header_names_are_matched_in_any_letter_case() -> None:
    headers = {name.title(): value for name, value in signed_headers().items()}

    verify(BODY, headers, SECRET, now=SIGNED_AT)


def test_an_asymmetric_message_verifies_with_the_public_key() -> None:
    signing_key, public_key = new_key_pair()

    verify(BODY, signed_headers(signing_key), public_key, now=SIGNED_AT)


@pytest.mark.parametrize("receiver_secret", [SECRET, OTHER_SECRET])
def test_during_a_rotation_either_secret_verifies(receiver_secret: str) -> None:
    headers = signed_headers(SECRET, OTHER_SECRET)

    verify(BODY, headers, receiver_secret, now=SIGNED_AT)


def test_a_receiver_rotating_its_secret_may_give_both() -> None:
    verify(BODY, signed_headers(OTHER_SECRET), [SECRET, OTHER_SECRET], now=SIGNED_AT)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(header: str) -> None:
    headers = signed_headers()
    del headers[header]

    with pytest.raises(MissingHeader, match=header) as refused:
        verify(BODY, headers, SECRET, now=SIGNED_AT)

    assert refused.value.header == header


@pytest.mark.parametrize(
    "timestamp", ["soon", "1.5e9", "-1614265330", "1614265330.5", "+1614265330", "١٢", "9" * 5000]
)
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    headers = signed_headers() | {"webhook-timestamp": timestamp}

    with pytest.raises(InvalidTimestamp):
        verify(BODY, headers, SECRET, now=SIGNED_AT)


def test_a_message_signed_just_within_the_tolerance_verifies() -> None:
    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT + timedelta(seconds=300))


def test_a_message_signed_longer_ago_than_the_tolerance_is_too_old() -> None:
    with pytest.raises(TimestampTooOld, match="301 seconds ago"):
        verify(BODY, signed_headers(), SECRET, now=SIGNED_AT + timedelta(seconds=301))


def test_a_message_timestamped_beyond_the_tolerance_in_the_future_is_too_new() -> None:
    with pytest.raises(TimestampTooNew, match="301 seconds in the future"):
        verify(BODY, signed_headers(), SECRET, now=SIGNED_AT - timedelta(seconds=301))


def test_the_tolerance_can_be_changed() -> None:
    with pytest.raises(TimestampTooOld):
        verify(
            BODY,
            signed_headers(),
            SECRET,
            tolerance_seconds=10,
            now=SIGNED_AT + timedelta(seconds=11),
        )


def test_without_now_the_current_time_is_used() -> None:
    verify(BODY, signed_headers(at=datetime.now(UTC)), SECRET)

    with pytest.raises(TimestampTooOld):
        verify(BODY, signed_headers(), SECRET)


def test_a_tampered_body_matches_no_signature() -> None:
    with pytest.raises(NoMatchingSignature):
        verify(BODY + b" ", signed_headers(), SECRET, now=SIGNED_AT)


def test_another_secret_matches_no_signature() -> None:
    with pytest.raises(NoMatchingSignature):
        verify(BODY, signed_headers(), OTHER_SECRET, now=SIGNED_AT)


def test_a_moved_timestamp_matches_no_signature() -> None:
    headers = signed_headers() | {"webhook-timestamp": str(int(SIGNED_AT.timestamp()) + 1)}

    with pytest.raises(NoMatchingSignature):
        verify(BODY, headers, SECRET, now=SIGNED_AT)


def test_a_malformed_secret_is_a_configuration_error_not_a_verification_failure() -> None:
    with pytest.raises(InvalidSecret) as refused:
        verify(BODY, signed_headers(), "not-a-secret", now=SIGNED_AT)

    assert not isinstance(refused.value, WebhookVerificationError)


def test_every_failure_is_a_webhook_verification_error() -> None:
    for failure in (
        MissingHeader,
        InvalidTimestamp,
        TimestampTooOld,
        TimestampTooNew,
        NoMatchingSignature,
        ReplayedMessage,
    ):
        assert issubclass(failure, WebhookVerificationError)


def test_the_replay_guard_refuses_a_message_seen_before() -> None:
    guard = ReplayGuard()
    verify(BODY, signed_headers(webhook_id="msg_1"), SECRET, now=SIGNED_AT, replay_guard=guard)

    with pytest.raises(ReplayedMessage, match="msg_1"):
        verify(
            BODY,
            signed_headers(webhook_id="msg_1"),
            SECRET,
            now=SIGNED_AT + timedelta(seconds=1),
            replay_guard=guard,
        )


def test_the_replay_guard_accepts_other_messages() -> None:
    guard = ReplayGuard()
    verify(BODY, signed_headers(webhook_id="msg_1"), SECRET, now=SIGNED_AT, replay_guard=guard)

    verify(BODY, signed_headers(webhook_id="msg_2"), SECRET, now=SIGNED_AT, replay_guard=guard)


def test_a_message_that_fails_verification_is_not_remembered() -> None:
    guard = ReplayGuard()
    with pytest.raises(NoMatchingSignature):
        verify(BODY, signed_headers(OTHER_SECRET), SECRET, now=SIGNED_AT, replay_guard=guard)

    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT, replay_guard=guard)


def test_a_forgotten_id_is_accepted_again() -> None:
    guard = ReplayGuard()
    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT, replay_guard=guard)

    guard.forget("msg_1")

    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT, replay_guard=guard)


def test_a_retry_with_a_new_timestamp_after_the_window_is_accepted() -> None:
    guard = ReplayGuard()
    verify(BODY, signed_headers(), SECRET, now=SIGNED_AT, replay_guard=guard)
    retried_at = SIGNED_AT + timedelta(seconds=301)

    verify(BODY, signed_headers(at=retried_at), SECRET, now=retried_at, replay_guard=guard)


def test_the_guard_forgets_ids_once_their_window_has_passed() -> None:
    guard = ReplayGuard()
    now = SIGNED_AT.timestamp()
    guard.remember("msg_1", until=now + 300, now=now)

    guard.remember("msg_1", until=now + 600, now=now + 300)


def test_the_guard_holds_at_most_max_entries_forgetting_the_oldest() -> None:
    guard = ReplayGuard(max_entries=2)
    now = SIGNED_AT.timestamp()
    for webhook_id in ("msg_1", "msg_2", "msg_3"):
        guard.remember(webhook_id, until=now + 300, now=now)

    guard.remember("msg_1", until=now + 300, now=now)
    with pytest.raises(ReplayedMessage):
        guard.remember("msg_3", until=now + 300, now=now)


def test_the_reference_library_verifies_what_frontdesk_signs() -> None:
    now = datetime.now(UTC)
    headers = signed_headers(at=now)

    parsed = standardwebhooks.Webhook(SECRET).verify(BODY, headers)

    assert parsed == {"type": "notification.sent", "data": {"id": "ntf_1"}}


def test_the_reference_library_verifies_a_message_signed_during_a_rotation() -> None:
    headers = signed_headers(OTHER_SECRET, SECRET, at=datetime.now(UTC))

    standardwebhooks.Webhook(SECRET).verify(BODY, headers)


def test_frontdesk_verifies_what_the_reference_library_signs() -> None:
    webhook = standardwebhooks.Webhook(SECRET)
    signature = webhook.sign("msg_1", SIGNED_AT, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(SIGNED_AT.timestamp())),
        "webhook-signature": signature,
    }

    verify(BODY, headers, SECRET, now=SIGNED_AT)
